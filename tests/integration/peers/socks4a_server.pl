#!/usr/bin/perl
#
# socks4a_server.pl: a SOCKS4a proxy for the integration tests.
#
# No daemon packaged in Debian serves SOCKS4a (Dante answers 91 to a 4a
# request), so this is the one proxy the tests bring themselves, a few
# lines over IO::Socket::Socks (libio-socket-socks-perl).  With
# $SOCKS4_RESOLVE set, a 4a request hands over the host NAME as the
# client sent it; the server writes one line per request to LOG:
#
#	request cmd=1 host=localhost port=2525
#
# then resolves and connects itself and relays both ways until either
# side closes, one child process per connection.  It listens on
# 127.0.0.1 only, grants CONNECT only, and does no authentication.
#
# usage: socks4a_server.pl PORT LOG
#
use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use IO::Socket::Socks qw(:constants $SOCKS_ERROR);

$IO::Socket::Socks::SOCKS4_RESOLVE = 1;

my ($listen_port, $log) = @ARGV;
die "usage: socks4a_server.pl PORT LOG\n" unless defined $log;

open(my $logf, '>>', $log) or die "socks4a_server: $log: $!\n";
$logf->autoflush(1);
$SIG{CHLD} = 'IGNORE';
$SIG{TERM} = sub { exit 0 };

my $srv = IO::Socket::Socks->new(SocksVersion => 4,
    ProxyAddr => '127.0.0.1', ProxyPort => $listen_port, Listen => 16,
    ReuseAddr => 1) or die "socks4a_server: $SOCKS_ERROR\n";

while (1) {
	my $client = $srv->accept() or next;
	my ($cmd, $host, $port) = @{$client->command()};
	print $logf "request cmd=$cmd host=$host port=$port\n";
	my $pid = fork();
	if (!defined $pid || $pid != 0) {
		close($client);
		next;
	}
	close($srv);
	relay($client, $cmd, $host, $port);
	exit 0;
}

sub relay {
	my ($client, $cmd, $host, $port) = @_;
	my $up;

	$up = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
	    Timeout => 10) if $cmd == CMD_CONNECT;
	if (!$up) {
		$client->command_reply(REQUEST_FAILED, $host, $port);
		return;
	}
	$client->command_reply(REQUEST_GRANTED, $up->peerhost(),
	    $up->peerport());
	my $sel = IO::Select->new($client, $up);
	while (1) {
		for my $from ($sel->can_read()) {
			my $to = $from == $client ? $up : $client;
			my $buf;
			my $n = sysread($from, $buf, 65536);
			return if !$n;
			my $off = 0;
			while ($off < $n) {
				my $w = syswrite($to, $buf, $n - $off, $off);
				return if !defined $w;
				$off += $w;
			}
		}
	}
}
