"""The upstream client through real proxies on loopback, each started by
the test: Dante (SOCKS4, SOCKS5), microsocks (SOCKS5 with RFC 1929
user/password), tinyproxy (HTTP CONNECT with Basic) and the small Perl
SOCKS4a server of peers/, probed with `postern probe` and used by posternd
for deliveries to aiosmtpd.  Every address is 127.0.0.1, so what went
through which proxy is read from the proxies' own logs."""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import POSTERN, SANITIZER_MARK, free_port, send_raw, \
    spool_messages, start_posternd, wait_until

SOCKS4A_SERVER = os.path.join(os.path.dirname(__file__), "peers",
                              "socks4a_server.pl")

# The upstream's security for each mode of the aiosmtpd peer.
SECURITY = {"plain": "none", "starttls": "starttls", "implicit": "tls"}


def find_binary(name):
    """The path of 'name', also in the sbin directories a non-root PATH
    lacks; skips the test when it is not installed."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin:/sbin"
    found = shutil.which(name, path=path)
    if found is None:
        pytest.skip("%s is not installed" % name)
    return found


def listening(port):
    """True once a socket listens on 127.0.0.1:port, read from
    /proc/net/tcp so that the proxy never sees a connection of ours."""
    addr = "%08X:%04X" % (struct.unpack("=I", socket.inet_aton(
        "127.0.0.1"))[0], port)
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == addr and fields[3] == "0A":
                return True
    return False


class Proxy:
    """A proxy in the foreground in its own process group; 'log' is the
    file it writes its connections to."""

    def __init__(self, name, args, port, log, out):
        self.name, self.args, self.port, self.log_path = name, args, port, log
        self.out = out
        self.proc = None
        self.start()

    def start(self):
        with open(self.out, "ab") as out:
            self.proc = subprocess.Popen(
                self.args, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while not listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                with open(self.out, errors="replace") as f:
                    raise AssertionError("%s did not start:\n%s"
                                         % (self.name, f.read()))
            time.sleep(0.02)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        """Stops the proxy and whatever it forked; waits until its port
        is free again."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        try:
            # Children the leader left behind (Dante's, the Perl relays).
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc = None
        deadline = time.monotonic() + 5
        while listening(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)


class Proxies:
    """Starts proxies on free ports under 'dir'; stops them all at the
    end of the test."""

    def __init__(self, directory):
        self.dir = directory
        self.started = []

    def _start(self, name, args, port, log, out=None):
        p = Proxy(name, args, port, str(log), str(out or log))
        self.started.append(p)
        return p

    def dante(self, port=None):
        """Dante answering SOCKS4 and SOCKS5 without authentication and
        logging every tunnel it opens."""
        danted = find_binary("danted")
        port = port or free_port()
        log = self.dir / ("danted-%d.log" % port)
        conf = self.dir / ("danted-%d.conf" % port)
        users = ("user.privileged: root\nuser.unprivileged: nobody\n"
                 if os.geteuid() == 0 else "")
        conf.write_text(
            "logoutput: %s\n"
            "internal: 127.0.0.1 port = %d\n"
            "external: 127.0.0.1\n"
            "clientmethod: none\n"
            "socksmethod: none\n"
            "%s"
            "client pass {\n\tfrom: 127.0.0.0/8 to: 0.0.0.0/0\n}\n"
            "socks pass {\n\tfrom: 127.0.0.0/8 to: 0.0.0.0/0\n"
            "\tcommand: connect\n\tlog: connect disconnect error\n}\n"
            "socks block {\n\tfrom: 0.0.0.0/0 to: 0.0.0.0/0\n"
            "\tlog: error\n}\n" % (log, port, users))
        return self._start("danted", [
            danted, "-f", str(conf), "-N", "1",
            "-p", str(self.dir / ("danted-%d.pid" % port))], port, log,
            self.dir / ("danted-%d.out" % port))

    def microsocks(self, user=None, password=None, port=None):
        """microsocks (SOCKS5 only), with RFC 1929 authentication when
        'user' is set; it logs "connected to HOST:PORT" per tunnel."""
        ms = find_binary("microsocks")
        port = port or free_port()
        args = [ms, "-i", "127.0.0.1", "-p", str(port)]
        if user is not None:
            args += ["-u", user, "-P", password]
        return self._start("microsocks", args, port,
                           self.dir / ("microsocks-%d.log" % port))

    def tinyproxy(self, user=None, password=None, port=None):
        """tinyproxy for HTTP CONNECT to any port (no ConnectPort line:
        with one, only the listed ports may be tunnelled), with Basic
        authentication when 'user' is set."""
        tp = find_binary("tinyproxy")
        port = port or free_port()
        log = self.dir / ("tinyproxy-%d.log" % port)
        conf = self.dir / ("tinyproxy-%d.conf" % port)
        text = ("Port %d\nListen 127.0.0.1\nTimeout 30\nLogLevel Connect\n"
                "LogFile \"%s\"\nMaxClients 16\nAllow 127.0.0.1\n"
                % (port, log))
        if user is not None:
            text += "BasicAuth %s %s\n" % (user, password)
        conf.write_text(text)
        return self._start("tinyproxy", [tp, "-d", "-c", str(conf)], port,
                           log, self.dir / ("tinyproxy-%d.out" % port))

    def socks4a(self, port=None):
        """The Perl SOCKS4a server; it logs "request ... host=H port=P"
        with the host as the client sent it."""
        perl = find_binary("perl")
        if subprocess.run([perl, "-MIO::Socket::Socks", "-e", "1"],
                          capture_output=True).returncode != 0:
            pytest.skip("IO::Socket::Socks (libio-socket-socks-perl) is "
                        "not installed")
        port = port or free_port()
        log = self.dir / ("socks4a-%d.log" % port)
        return self._start("socks4a_server.pl",
                           [perl, SOCKS4A_SERVER, str(port), str(log)],
                           port, log, self.dir / ("socks4a-%d.out" % port))

    def close(self):
        for p in self.started:
            p.stop()


@pytest.fixture
def proxies(tmp_path):
    d = tmp_path / "proxies"
    d.mkdir()
    px = Proxies(d)
    yield px
    px.close()


def upstream(port, security="none", proxy=(), host="127.0.0.1", extra="",
             timeouts=""):
    """One upstream's settings, its proxies in the order given."""
    text = 'host = "%s"; port = %d; security = "%s"; ' % (host, port,
                                                          security)
    if proxy:
        text += "proxy = ( %s ); " % ", ".join('"%s"' % u for u in proxy)
    if "proxy =" not in timeouts:
        timeouts = 'proxy = "5s"; ' + timeouts
    return text + "timeouts = { %s }; %s" % (timeouts, extra)


def ca(pki):
    return 'tls = { ca_file = "%s"; };' % (pki / "ca.pem")


def run_probe(tmp_path, up, *args, env=None, json_out=True):
    """Writes a config with one upstream "up" and runs postern probe;
    returns the parsed JSON result (exit status, elapsed seconds and the
    raw output added), or the text output when json_out is false."""
    conf = tmp_path / "probe.conf"
    (tmp_path / "spool").mkdir(exist_ok=True)
    conf.write_text('hostname = "client.test";\n'
                    'spool_dir = "%s";\n'
                    'upstreams = ( { name = "up"; %s } );\n'
                    % (tmp_path / "spool", up))
    os.chmod(conf, 0o600)
    full_env = dict(os.environ)
    full_env.pop("POSTERN_PROXY", None)
    full_env.update(env or {})
    cmd = [POSTERN, "probe", "-c", str(conf)]
    cmd += ["--json"] if json_out else ["-v"]
    start = time.monotonic()
    r = subprocess.run(cmd + list(args), capture_output=True, text=True,
                       timeout=60, env=full_env)
    elapsed = time.monotonic() - start
    assert not SANITIZER_MARK.search(r.stderr), r.stderr
    if not json_out:
        return r.stdout
    assert r.stdout, r.stderr
    result = json.loads(r.stdout)[0]
    result["exit"] = r.returncode
    result["elapsed"] = elapsed
    result["raw"] = r.stdout
    return result


def assert_mode(r, mode):
    """The session is in the TLS mode 'mode', certificate verified."""
    if mode == "plain":
        assert r["tls"] is False, r
    else:
        assert r["tls"] and r["tls_verified"], r
        assert r["starttls"] == (mode == "starttls"), r


def dante_tunnels(dante, port):
    """How many tunnels Dante opened to 127.0.0.1:port."""
    # "pass(1): tcp/connect [: CLIENT PROXY -> PROXY-SIDE TARGET"
    return sum(1 for line in dante.log().splitlines()
               if "tcp/connect [" in line
               and line.rstrip().endswith(" 127.0.0.1.%d" % port))



# SOCKS4 and SOCKS5 without authentication: Dante.

@pytest.mark.parametrize("mode", ["plain", "starttls", "implicit"])
@pytest.mark.parametrize("kind", ["socks4", "socks5"])
def test_dante_tunnels_each_tls_mode(tmp_path, peer, pki, proxies, kind,
                                     mode):
    dante = proxies.dante()
    p = peer(mode)
    url = "%s://127.0.0.1:%d" % (kind, dante.port)
    r = run_probe(tmp_path, upstream(p.port, SECURITY[mode], [url],
                                     extra=ca(pki)),
                  "--send", "rcpt@example.org")
    assert r["exit"] == 0 and r["ok"] and r["sent"], r
    assert r["connected_to"] == "127.0.0.1:%d" % dante.port
    assert [(x["url"], x["ok"]) for x in r["proxies"]] == [(url, True)]
    assert_mode(r, mode)
    assert len(p.messages()) == 1
    assert b"X-Rcpt-To: rcpt@example.org" in p.messages()[0]
    assert dante_tunnels(dante, p.port) == 1, dante.log()


# SOCKS5 with RFC 1929 user/password: microsocks.

def test_socks5_password_right_and_wrong(tmp_path, peer, proxies):
    ms = proxies.microsocks("bob", "s3cret")
    p = peer("plain")
    r = run_probe(tmp_path, upstream(
        p.port, proxy=["socks5://bob:s3cret@127.0.0.1:%d" % ms.port]))
    assert r["ok"], r
    assert r["proxies"][0]["url"] == "socks5://bob@127.0.0.1:%d" % ms.port
    assert "s3cret" not in r["raw"]
    assert "connected to 127.0.0.1:%d" % p.port in ms.log()
    tunnels = ms.log().count("connected to")

    r = run_probe(tmp_path, upstream(
        p.port, proxy=["socks5://bob:wrong@127.0.0.1:%d" % ms.port]))
    assert not r["ok"] and r["exit"] == 1
    assert r["error_stage"] == "proxy"
    assert "authentication failed" in r["error"], r["error"]
    assert r["proxies"][0]["ok"] is False
    assert "authentication" in r["proxies"][0]["error"]
    assert ms.log().count("connected to") == tunnels

    r = run_probe(tmp_path, upstream(
        p.port, proxy=["socks5://127.0.0.1:%d" % ms.port]))
    assert not r["ok"] and r["error_stage"] == "proxy"
    assert "wants authentication, and no user is set" in r["error"], r
    assert p.messages() == []


def test_socks5_password_with_escaped_bytes(tmp_path, peer, proxies):
    ms = proxies.microsocks("b@b", "p@ss:w/rd%")
    p = peer("plain")
    r = run_probe(tmp_path, upstream(p.port, proxy=[
        "socks5://b%%40b:p%%40ss%%3Aw%%2Frd%%25@127.0.0.1:%d" % ms.port]))
    assert r["ok"], r
    assert r["proxies"][0]["url"] == "socks5://b%%40b@127.0.0.1:%d" \
        % ms.port
    assert "ss%3A" not in r["raw"] and "p@ss" not in r["raw"]


def test_proxy_password_in_a_world_readable_file_is_refused(tmp_path):
    conf = tmp_path / "open.conf"
    conf.write_text('hostname = "client.test";\nspool_dir = "%s";\n'
                    'upstreams = ( { name = "up"; %s } );\n'
                    % (tmp_path / "spool", upstream(
                        25, proxy=["socks5://bob:s3cret@127.0.0.1:1080"])))
    os.chmod(conf, 0o644)
    r = subprocess.run([POSTERN, "check-config", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r.stdout
    assert "readable by others" in r.stdout + r.stderr
    assert "s3cret" not in r.stdout + r.stderr


# Where the name is resolved.

def test_socks5h_sends_the_name_to_the_proxy(tmp_path, peer, proxies):
    ms = proxies.microsocks("bob", "s3cret")
    p = peer("plain")
    up = upstream(p.port, host="localhost",
                  proxy=["socks5h://bob:s3cret@127.0.0.1:%d" % ms.port])
    r = run_probe(tmp_path, up)
    assert r["ok"], r
    # The proxy got the name and looked it up itself ...
    assert "connected to localhost:%d" % p.port in ms.log(), ms.log()
    # ... and postern looked up only the proxy's address.
    trace = run_probe(tmp_path, up, json_out=False)
    assert "asking socks5 proxy 127.0.0.1:%d for localhost:%d" \
        % (ms.port, p.port) in trace, trace
    assert "resolving localhost" not in trace, trace
    assert "hop-resolve" not in trace, trace


def test_socks5_resolves_the_name_here(tmp_path, peer, proxies):
    ms = proxies.microsocks("bob", "s3cret")
    p = peer("plain")
    up = upstream(p.port, host="localhost",
                  proxy=["socks5://bob:s3cret@127.0.0.1:%d" % ms.port])
    r = run_probe(tmp_path, up)
    assert r["ok"], r
    assert "connected to 127.0.0.1:%d" % p.port in ms.log(), ms.log()
    assert "localhost" not in ms.log()
    trace = run_probe(tmp_path, up, json_out=False)
    assert "resolving localhost for socks5 proxy" in trace, trace
    assert "asking socks5 proxy 127.0.0.1:%d for 127.0.0.1:%d" \
        % (ms.port, p.port) in trace, trace


def test_socks4a_sends_the_name_socks4_the_address(tmp_path, peer, pki,
                                                   proxies):
    s4 = proxies.socks4a()
    p = peer("starttls")
    r = run_probe(tmp_path, upstream(
        p.port, "starttls", host="localhost", extra=ca(pki),
        proxy=["socks4a://127.0.0.1:%d" % s4.port]))
    assert r["ok"], r
    assert_mode(r, "starttls")
    assert s4.log().splitlines() == [
        "request cmd=1 host=localhost port=%d" % p.port], s4.log()

    r = run_probe(tmp_path, upstream(
        p.port, "starttls", host="localhost", extra=ca(pki),
        proxy=["socks4://127.0.0.1:%d" % s4.port]))
    assert r["ok"], r
    assert s4.log().splitlines()[1:] == [
        "request cmd=1 host=127.0.0.1 port=%d" % p.port], s4.log()


# HTTP CONNECT with Basic authentication: tinyproxy.

@pytest.mark.parametrize("mode", ["plain", "starttls", "implicit"])
def test_http_connect_each_tls_mode(tmp_path, peer, pki, proxies, mode):
    tp = proxies.tinyproxy("bob", "s3cret")
    p = peer(mode)
    r = run_probe(tmp_path, upstream(
        p.port, SECURITY[mode], extra=ca(pki),
        proxy=["http://bob:s3cret@127.0.0.1:%d" % tp.port]),
        "--send", "rcpt@example.org")
    assert r["ok"] and r["sent"], r
    assert r["proxies"][0] == {"url": "http://bob@127.0.0.1:%d" % tp.port,
                               "ok": True, "ms": r["proxies"][0]["ms"],
                               "error": ""}
    assert_mode(r, mode)
    assert len(p.messages()) == 1
    assert "CONNECT 127.0.0.1:%d HTTP/1.1" % p.port in tp.log(), tp.log()


def test_http_connect_authentication_failures(tmp_path, peer, proxies):
    tp = proxies.tinyproxy("bob", "s3cret")
    p = peer("plain")
    r = run_probe(tmp_path, upstream(
        p.port, proxy=["http://bob:wrong@127.0.0.1:%d" % tp.port]))
    assert not r["ok"] and r["exit"] == 1
    assert r["error_stage"] == "proxy"
    # tinyproxy answers a wrong password with 401, not 407.
    assert "authentication failed" in r["error"], r["error"]
    assert "401" in r["error"] or "407" in r["error"], r["error"]
    assert r["proxies"][0]["ok"] is False

    r = run_probe(tmp_path, upstream(
        p.port, proxy=["http://127.0.0.1:%d" % tp.port]))
    assert not r["ok"] and r["error_stage"] == "proxy"
    assert "407" in r["error"] and "no user is set" in r["error"], r
    assert p.messages() == []


# A list of proxies is a failover list.

def test_dead_proxy_then_live_one(tmp_path, peer, proxies):
    dante = proxies.dante()
    p = peer("plain")
    dead = free_port()
    r = run_probe(tmp_path, upstream(p.port, proxy=[
        "socks5://127.0.0.1:%d" % dead,
        "socks5://127.0.0.1:%d" % dante.port]))
    assert r["ok"] and r["exit"] == 0, r
    first, second = r["proxies"]
    assert first["url"] == "socks5://127.0.0.1:%d" % dead
    assert first["ok"] is False
    assert "connection refused" in first["error"], first
    assert second["ok"] is True and second["error"] == ""
    assert r["connected_to"] == "127.0.0.1:%d" % dante.port
    assert dante_tunnels(dante, p.port) == 1


def test_every_proxy_dead(tmp_path, peer):
    p = peer("plain")
    dead = [free_port(), free_port()]
    r = run_probe(tmp_path, upstream(p.port, proxy=[
        "socks5://127.0.0.1:%d" % dead[0], "http://127.0.0.1:%d" % dead[1]]))
    assert not r["ok"] and r["exit"] == 1
    assert r["error_stage"] == "connect"
    assert [x["ok"] for x in r["proxies"]] == [False, False]
    assert all("connection refused" in x["error"] for x in r["proxies"])


def test_silent_proxy_times_out_then_next(tmp_path, peer, proxies):
    dante = proxies.dante()
    p = peer("plain")
    with socket.socket() as silent:
        # It accepts connections (the kernel does) and never answers.
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        r = run_probe(tmp_path, upstream(
            p.port, timeouts='proxy = "1s";', proxy=[
                "socks5://127.0.0.1:%d" % silent.getsockname()[1],
                "socks5://127.0.0.1:%d" % dante.port]))
    assert r["ok"], r
    assert r["proxies"][0]["ok"] is False
    assert "timed out" in r["proxies"][0]["error"], r["proxies"][0]
    assert r["proxies"][1]["ok"] is True
    print("a silent proxy with timeouts.proxy 1s cost %.2fs" % r["elapsed"])
    assert r["elapsed"] < 4


# Auto-negotiation through a proxy.

def test_auto_through_socks5_learns_implicit(tmp_path, peer, pki, proxies):
    dante = proxies.dante()
    p = peer("implicit")
    r = run_probe(tmp_path, upstream(
        p.port, "auto", extra=ca(pki), timeouts='greeting = "1s";',
        proxy=["socks5://127.0.0.1:%d" % dante.port]))
    assert r["ok"], r
    assert r["learned"] == "implicit" and r["tls"] and r["tls_verified"]
    assert r["path"].startswith("plain(no greeting) -> tls"), r["path"]
    print("auto-negotiation through SOCKS5 took %.2fs" % r["elapsed"])
    assert r["elapsed"] < 5
    # Both attempts, the silent plain one and the TLS one, went through.
    assert dante_tunnels(dante, p.port) == 2, dante.log()


# POSTERN_PROXY replaces the file's lists.

def test_postern_proxy_replaces_the_file_list(tmp_path, peer, proxies):
    ms = proxies.microsocks("bob", "s3cret")
    tp = proxies.tinyproxy("bob", "s3cret")
    p = peer("plain")
    dead = free_port()
    up = upstream(p.port, host="localhost",
                  proxy=["socks5://127.0.0.1:%d" % dead])
    r = run_probe(tmp_path, up)
    assert not r["ok"] and "connection refused" in r["error"], r

    r = run_probe(tmp_path, up, env={
        "POSTERN_PROXY": "socks5h://bob:s3cret@127.0.0.1:%d" % ms.port})
    assert r["ok"], r
    assert [x["url"] for x in r["proxies"]] == [
        "socks5h://bob@127.0.0.1:%d" % ms.port]
    assert "connected to localhost:%d" % p.port in ms.log()

    # Comma-separated: a failover list of its own.
    r = run_probe(tmp_path, up, env={
        "POSTERN_PROXY": "socks5://127.0.0.1:%d,http://bob:s3cret@"
                         "127.0.0.1:%d" % (dead, tp.port)})
    assert r["ok"], r
    assert [(x["url"], x["ok"]) for x in r["proxies"]] == [
        ("socks5://127.0.0.1:%d" % dead, False),
        ("http://bob@127.0.0.1:%d" % tp.port, True)]
    assert "CONNECT localhost:%d" % p.port in tp.log()
    assert "s3cret" not in r["raw"]


def test_bad_postern_proxy_is_refused(tmp_path, peer):
    p = peer("plain")
    conf = tmp_path / "bad.conf"
    conf.write_text('hostname = "client.test";\nspool_dir = "%s";\n'
                    'upstreams = ( { name = "up"; %s } );\n'
                    % (tmp_path / "spool", upstream(p.port)))
    env = dict(os.environ, POSTERN_PROXY="gopher://127.0.0.1:70")
    r = subprocess.run([POSTERN, "check-config", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode != 0
    assert "POSTERN_PROXY" in r.stdout + r.stderr, r


# Deliveries by posternd.

def relay_conf(port, proxy, security="none", host="127.0.0.1", extra=""):
    """posternd's settings for one upstream through 'proxy', retried each
    second; the breaker stays out of the way."""
    return ('upstreams = ( { name = "up"; %s } );\n'
            'queue = { retry = ( "1s" ); breaker_failures = 100; };\n'
            % upstream(port, security, proxy, host=host, extra=extra,
                       timeouts='connect = "2s"; command = "10s";'))


def test_delivery_through_dante_stops_when_it_stops(tmp_path, daemon_factory,
                                                   peer, proxies):
    dante = proxies.dante()
    p = peer("plain")
    url = "socks5://127.0.0.1:%d" % dante.port
    d = start_posternd(daemon_factory, tmp_path, relay_conf(p.port, [url]))
    send_raw(d.port, "a@example.org", ["b@example.org"],
             b"Subject: one\r\n\r\nx\r\n")
    wait_until(lambda: len(p.messages()) == 1, what="delivery")
    assert dante_tunnels(dante, p.port) == 1, dante.log()
    wait_until(lambda: spool_messages(d.spool) == [], what="removal")

    # Without the proxy the message waits; it does not go around it.
    dante.stop()
    mark = len(d.lines)
    send_raw(d.port, "a@example.org", ["c@example.org"],
             b"Subject: two\r\n\r\nx\r\n")
    i = d.wait_for("event=connect-failed", start=mark)
    line = d.lines[i]
    assert "proxy=" in line and url in line, line
    assert "connection refused" in line, line
    d.wait_for("event=retry", start=mark)
    assert len(p.messages()) == 1
    assert len(spool_messages(d.spool)) == 1

    # Back on the same port: the retry goes through it.
    dante.start()
    wait_until(lambda: len(p.messages()) == 2, what="redelivery")
    assert b"Subject: two" in p.messages()[1]
    assert dante_tunnels(dante, p.port) == 2, dante.log()   # one log
    wait_until(lambda: spool_messages(d.spool) == [], what="removal")


def test_delivery_fails_over_to_the_env_proxy_list(tmp_path, daemon_factory,
                                                   peer, pki, proxies):
    ms = proxies.microsocks("bob", "s3cret")
    p = peer("starttls")
    dead = free_port()
    conf = relay_conf(p.port, ["socks5://127.0.0.1:%d" % free_port()],
                      "starttls", host="localhost", extra=ca(pki))
    d = start_posternd(daemon_factory, tmp_path, conf, env={
        "POSTERN_PROXY": "socks5://127.0.0.1:%d,socks5h://bob:s3cret@"
                         "127.0.0.1:%d" % (dead, ms.port)})
    send_raw(d.port, "a@example.org", ["b@example.org"],
             b"Subject: one\r\n\r\nx\r\n")
    wait_until(lambda: len(p.messages()) == 1, what="delivery")
    i = d.wait_for("event=connect-failed")
    assert "127.0.0.1:%d" % dead in d.lines[i]
    assert "connected to localhost:%d" % p.port in ms.log(), ms.log()
    wait_until(lambda: spool_messages(d.spool) == [], what="removal")

    # The live proxy is used from now on: no second refusal.
    send_raw(d.port, "a@example.org", ["c@example.org"],
             b"Subject: two\r\n\r\nx\r\n")
    wait_until(lambda: len(p.messages()) == 2, what="second delivery")
    assert sum("event=connect-failed" in line for line in d.lines) == 1
    assert not any("s3cret" in line for line in d.lines)
