"""posternd against peers that misbehave on purpose (issue #8).

Upstreams that go silent at each step of the dialogue, reset the
connection mid-DATA, answer with garbage, send a reply that never ends,
inject plaintext after STARTTLS or trickle their greeting
(peers/hostile_smtpd.py); proxies that hang up mid-handshake or trickle
(peers/hostile_proxy.py); clients that hold sessions open or trickle
their data.  For each: the mail is deferred, not bounced, with a reason
that names the stage; it stays queued; posternd stays alive, keeps
serving and keeps its memory bounded; a good peer gets the mail later.

Timeouts are a few seconds so that the whole file runs in less than a
minute and a half (under valgrind too).
"""

import json
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import POSTERN, BUILD, VALGRIND, free_port, send_raw, \
    spool_messages, start_posternd, wait_until

PEERS = os.path.join(os.path.dirname(__file__), "peers")
HOSTILE_SMTPD = os.path.join(PEERS, "hostile_smtpd.py")
HOSTILE_PROXY = os.path.join(PEERS, "hostile_proxy.py")

TIMEOUTS = ('timeouts = { connect = "2s"; command = "2s"; data = "2s"; '
            'dot = "2s"; greeting = "1s"; proxy = "1s"; };')
QUEUE = 'queue = { retry = ( "1s" ); breaker_failures = 100; };\n'

MIB = 1024 * 1024


def upstream(name, port, extra=""):
    return ('{ name = "%s"; host = "127.0.0.1"; port = %d; '
            'security = "none"; %s %s }' % (name, port, TIMEOUTS, extra))


def relay_conf(*ups):
    return "upstreams = ( %s );\n%s" % (", ".join(ups), QUEUE)



def rss(pid):
    """Resident set size of 'pid' in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def instrumented():
    """True when posternd runs under a sanitizer or valgrind, whose own
    memory makes an absolute RSS bound meaningless."""
    if VALGRIND:
        return True
    try:
        with open(os.path.join(BUILD, "meson-info",
                               "intro-buildoptions.json")) as f:
            opts = json.load(f)
    except OSError:
        return False
    return any(o["name"] == "b_sanitize" and o["value"] != "none"
               for o in opts)


class Hostile:
    """One of the hostile peers of peers/, in its own process."""

    def __init__(self, script, behaviour, port, tmp_path):
        self.port = port
        self.log_path = tmp_path / ("%s-%d.log" % (behaviour, port))
        ready = tmp_path / ("ready-%d" % port)
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", script, "--port", str(port),
             "--behaviour", behaviour, "--ready", str(ready),
             "--log", str(self.log_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: ready.exists() or self.proc.poll() is not None,
                   timeout=10, what="the hostile peer")
        assert self.proc.poll() is None, "%s did not start" % script
        ready.unlink()

    def log(self):
        try:
            return self.log_path.read_text().splitlines()
        except FileNotFoundError:
            return []

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def hostile(tmp_path):
    started = []

    def start(behaviour, port=None, script=HOSTILE_SMTPD):
        h = Hostile(script, behaviour, port or free_port(), tmp_path)
        started.append(h)
        return h

    yield start
    for h in started:
        h.stop()


def line_with(d, text, start=0, timeout=20):
    return d.lines[d.wait_for(text, timeout=timeout, start=start)]


# lib/client/client.c reports every failure in CLIENT_ST_MAIL (timeout in
# client_timeout(), EOF or error in client_eventcb(), client_failf())
# under client_state_stage[CLIENT_ST_MAIL], PST_STAGE_MAIL: a server that
# accepted MAIL and then stalls on RCPT or on DATA is logged as
# stage=mail "timed out sending MAIL FROM".  The stage should be that of
# the oldest unanswered command (the head of c->expect).
# Upstreams that misbehave.  Each case: the behaviour, the stage the
# failure must be logged under, and what the reason must say.

def case(behaviour, stage, reason):
    return pytest.param(behaviour, stage, reason, id=behaviour)


CASES = [
    case("silent", "greeting", "timed out waiting for the greeting"),
    case("trickle-greeting", "greeting",
         "timed out waiting for the greeting"),
    case("garbage-binary", "greeting", "malformed reply"),
    case("garbage-http", "greeting", "malformed reply"),
    case("stall-ehlo", "ehlo", "timed out sending EHLO"),
    case("endless-reply", "ehlo", "malformed reply"),
    case("starttls-inject", "starttls", "after its reply to STARTTLS"),
    case("stall-mail", "mail", "timed out sending MAIL FROM"),
    # The stage of these two: test_stall_names_the_unanswered_command.
    case("stall-rcpt", None, "timed out sending"),
    case("stall-data", None, "timed out sending"),
    case("stall-body", "data", "timed out sending the message"),
    case("reset-body", "data", "sending the message"),
    case("stall-dot", "dot",
         "timed out waiting for the reply to the end of data"),
]


@pytest.mark.parametrize("behaviour,stage,reason", CASES)
def test_hostile_upstream_defers_and_keeps_the_mail(
        tmp_path, daemon_factory, peer, hostile, pki, behaviour, stage,
        reason):
    """The only upstream misbehaves: the recipient is deferred (never
    failed or bounced) with a reason naming the stage, the message stays
    queued with that reason, and once a real server takes the port the
    message and a newer one are delivered."""
    h = hostile(behaviour)
    extra = ""
    if behaviour == "starttls-inject":
        extra = 'tls = { ca_file = "%s"; };' % (pki / "ca.pem")
    up = upstream("bad", h.port, extra)
    if behaviour == "starttls-inject":
        up = up.replace('security = "none"', 'security = "starttls"')
    d = start_posternd(daemon_factory, tmp_path, relay_conf(up))
    body = b"Subject: hostile\r\n\r\n"
    if behaviour in ("stall-body", "reset-body"):
        # More than the kernel's socket buffers hold between the two.
        body += (b"y" * 78 + b"\r\n") * (8 * MIB // 80)
    else:
        body += b"x\r\n"
    start = time.monotonic()
    assert send_raw(d.port, "a@example.org", ["b@example.org"],
                    body).startswith("250 ")
    failed = line_with(d, "-failed upstream=bad")
    elapsed = time.monotonic() - start
    print("%s: %s after %.2fs" % (behaviour, failed, elapsed))
    deferred = line_with(d, "event=deferred")
    if stage is not None:
        assert "stage=%s " % stage in failed, failed
    assert reason in failed, failed
    assert reason in deferred, deferred
    assert not any("event=failed" in l or "event=bounced" in l
                   for l in d.lines), d.lines
    # Still queued, the reason kept in the envelope.  Retries come every
    # second: on a busy machine the second may be saved before we look.
    wait_until(lambda: spool_messages(d.spool)
               and int(spool_messages(d.spool)[0][0]["attempts"]) >= 1,
               what="the saved attempt")
    env, _ = spool_messages(d.spool)[0]
    assert env["rcpt.state"] == ["deferred"]
    assert reason in env["rcpt.error"][0], env
    assert d.proc.poll() is None
    # A good server in its place gets the mail, and posternd takes more.
    h.stop()
    good = peer("starttls" if behaviour == "starttls-inject" else "plain",
                port=h.port)
    assert send_raw(d.port, "a@example.org", ["c@example.org"],
                    b"Subject: after\r\n\r\nx\r\n").startswith("250 ")
    wait_until(lambda: len(good.messages()) == 2, timeout=30,
               what="delivery to the good server")
    wait_until(lambda: spool_messages(d.spool) == [], what="queue empty")


@pytest.mark.parametrize("behaviour,stage,reason", [
    case("stall-rcpt", "rcpt", "timed out sending RCPT TO"),
    case("stall-data", "data", "timed out sending the message"),
])
def test_stall_names_the_unanswered_command(tmp_path, daemon_factory,
                                            hostile, behaviour, stage,
                                            reason):
    h = hostile(behaviour)
    d = start_posternd(daemon_factory, tmp_path,
                       relay_conf(upstream("bad", h.port)))
    send_raw(d.port, "a@example.org", ["b@example.org"], b"\r\nx\r\n")
    failed = line_with(d, "event=session-failed upstream=bad")
    assert "stage=%s " % stage in failed and reason in failed, failed


def test_silent_upstream_fails_over_to_the_next(tmp_path, daemon_factory,
                                                peer, hostile):
    h = hostile("silent")
    good = peer()
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        upstream("bad", h.port), upstream("good", good.port)))
    send_raw(d.port, "a@example.org", ["b@example.org"],
             b"Subject: around\r\n\r\nx\r\n")
    wait_until(lambda: len(good.messages()) == 1, what="failover delivery")
    failed = line_with(d, "event=connect-failed upstream=bad")
    assert "stage=greeting" in failed, failed
    assert "event=failover" in line_with(d, "event=failover")
    assert "upstream=good" in line_with(d, "event=delivered")
    wait_until(lambda: spool_messages(d.spool) == [], what="queue empty")


def test_endless_reply_keeps_memory_bounded(tmp_path, daemon_factory,
                                            hostile):
    """Four messages, each tried against the endless reply every second:
    every attempt is cut by the reply bounds, and posternd's RSS does not
    grow from one round to the next."""
    h = hostile("endless-reply")
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        upstream("bad", h.port)))
    before = rss(d.proc.pid)
    for i in range(4):
        send_raw(d.port, "a@example.org", ["b%d@example.org" % i],
                 b"\r\nx\r\n")

    def attempts():
        return sum("event=connect-failed upstream=bad" in l
                   for l in d.lines)

    wait_until(lambda: attempts() >= 4, what="the first round")
    first = rss(d.proc.pid)
    wait_until(lambda: attempts() >= 16, timeout=30, what="four rounds")
    last = rss(d.proc.pid)
    sent = [int(l.split()[1]) for l in h.log() if l.startswith("sent ")]
    print("endless reply: RSS %.1f MiB at start, %.1f after one round, "
          "%.1f after %d attempts; the server pushed %.1f MiB at most "
          "per connection before the client hung up"
          % (before / MIB, first / MIB, last / MIB, attempts(),
             max(sent, default=0) / MIB))
    assert all("too many lines" in l for l in d.lines
               if "event=connect-failed" in l)
    assert d.proc.poll() is None
    assert last - first < 8 * MIB
    if not instrumented():
        assert last < 64 * MIB
    assert len(spool_messages(d.spool)) == 4


# Proxies that misbehave.  The second proxy of the list is microsocks, a
# real one.

def listening(port):
    """True once something listens on 127.0.0.1:port (/proc/net/tcp, so
    that the listener never sees a connection of ours)."""
    addr = "%08X:%04X" % (struct.unpack("=I", socket.inet_aton(
        "127.0.0.1"))[0], port)
    with open("/proc/net/tcp") as f:
        return any(l.split()[1] == addr and l.split()[3] == "0A"
                   for l in f.readlines()[1:])


@pytest.fixture
def microsocks():
    binary = "/usr/bin/microsocks"
    if not os.path.exists(binary):
        pytest.skip("microsocks is not installed")
    port = free_port()
    proc = subprocess.Popen([binary, "-i", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_until(lambda: listening(port), timeout=10, what="microsocks")
    yield port
    proc.kill()
    proc.wait()


PROXY_CASES = [
    pytest.param("close", "closed", id="close-mid-handshake"),
    pytest.param("trickle", "timed out", id="trickle"),
]


@pytest.mark.parametrize("behaviour,reason", PROXY_CASES)
def test_hostile_proxy_probe_uses_the_next(tmp_path, peer, hostile,
                                           microsocks, behaviour, reason):
    p = peer()
    h = hostile(behaviour, script=HOSTILE_PROXY)
    bad = "socks5://127.0.0.1:%d" % h.port
    conf = tmp_path / "probe.conf"
    (tmp_path / "spool").mkdir()
    conf.write_text('hostname = "client.test";\nspool_dir = "%s";\n'
                    'upstreams = ( %s );\n'
                    % (tmp_path / "spool", upstream(
                        "up", p.port, 'proxy = ( "%s", "socks5://127.0.0.1:'
                        '%d" );' % (bad, microsocks))))
    os.chmod(conf, 0o600)
    start = time.monotonic()
    r = subprocess.run([POSTERN, "probe", "-c", str(conf), "--json"],
                       capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - start
    res = json.loads(r.stdout)[0]
    print("probe past a %s proxy: %.2fs, %s" % (behaviour, elapsed,
                                                res["proxies"][0]))
    assert r.returncode == 0 and res["ok"], res
    first, second = res["proxies"]
    assert first["url"] == bad and first["ok"] is False
    assert reason in first["error"], first
    assert second["ok"] is True
    assert "greeting" in h.log() or "request" in h.log()
    assert elapsed < 10


@pytest.mark.parametrize("behaviour,reason", PROXY_CASES)
def test_hostile_proxy_delivery_uses_the_next(tmp_path, daemon_factory,
                                              peer, hostile, microsocks,
                                              behaviour, reason):
    p = peer()
    h = hostile(behaviour, script=HOSTILE_PROXY)
    bad = "socks5://127.0.0.1:%d" % h.port
    d = start_posternd(daemon_factory, tmp_path, relay_conf(upstream(
        "up", p.port, 'proxy = ( "%s", "socks5://127.0.0.1:%d" );'
        % (bad, microsocks))))
    send_raw(d.port, "a@example.org", ["b@example.org"],
             b"Subject: via\r\n\r\nx\r\n")
    wait_until(lambda: len(p.messages()) == 1, what="delivery")
    failed = line_with(d, "event=connect-failed upstream=up")
    assert "proxy=" in failed and bad in failed, failed
    assert "stage=proxy" in failed and reason in failed, failed
    assert d.proc.poll() is None
    wait_until(lambda: spool_messages(d.spool) == [], what="queue empty")


# Clients that misbehave.

LIMITS = 'limits = { sessions = 20; idle = "2s"; };\n'


def read_reply(sock):
    """One reply line from a raw socket ('' at EOF)."""
    data = b""
    while not data.endswith(b"\n"):
        c = sock.recv(1)
        if not c:
            break
        data += c
    return data.decode("ascii", "replace")


def test_session_limit_and_idle_expiry(tmp_path, daemon_factory):
    d = start_posternd(daemon_factory, tmp_path, LIMITS)
    idle = []
    try:
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            idle.append(s)
            assert read_reply(s).startswith("220 ")
        with socket.create_connection(("127.0.0.1", d.port),
                                      timeout=10) as s:
            assert read_reply(s).startswith("421 4.7.0 ")
            assert read_reply(s) == ""
        held = rss(d.proc.pid)
        start = time.monotonic()
        for s in idle:
            assert read_reply(s).startswith("421 4.4.2 ")
            assert read_reply(s) == ""
        elapsed = time.monotonic() - start
        print("20 idle sessions held %.1f MiB RSS, were closed %.2fs "
              "later" % (held / MIB, elapsed))
        assert elapsed < 6
    finally:
        for s in idle:
            s.close()
    assert send_raw(d.port, "a@example.org", ["b@example.org"],
                    b"\r\nx\r\n").startswith("250 ")
    if not instrumented():
        assert rss(d.proc.pid) < 64 * MIB


def test_slow_clients_do_not_block_others(tmp_path, daemon_factory):
    """Ten clients trickle a command line that never ends, one byte a
    second; one trickles its message one byte every 100 ms, above
    min_data_rate.  Meanwhile normal clients get their mail accepted at
    once, the trickled message is accepted too, and the ten are cut when
    idle has passed without a whole line (bytes do not extend it)."""
    d = start_posternd(daemon_factory, tmp_path, LIMITS.replace(
        "};", "min_data_rate = 5; };"))
    stop = threading.Event()
    sitters = []
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        assert read_reply(s).startswith("220 ")
        sitters.append(s)

    def sit():
        n = 0
        while not stop.is_set():
            for s in sitters:
                try:
                    s.sendall(b"HELO x"[n:n + 1] if n < 6 else b"x")
                except OSError:
                    pass        # cut by the server
            n += 1
            stop.wait(1)

    trickled = {}

    def trickle():
        with socket.create_connection(("127.0.0.1", d.port),
                                      timeout=30) as s:
            read_reply(s)
            for c in ["HELO slow.test", "MAIL FROM:<slow@example.org>",
                      "RCPT TO:<b@example.org>", "DATA"]:
                s.sendall(c.encode() + b"\r\n")
                read_reply(s)
            for b in b"Subject: trickled\r\n\r\nslowly\r\n.\r\n":
                s.sendall(bytes([b]))
                time.sleep(0.1)
            trickled["reply"] = read_reply(s)

    threads = [threading.Thread(target=sit),
               threading.Thread(target=trickle)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        took = []
        for i in range(5):
            start = time.monotonic()
            assert send_raw(d.port, "a@example.org", ["n%d@example.org" % i],
                            b"\r\nx\r\n").startswith("250 ")
            took.append(time.monotonic() - start)
        assert threads[1].is_alive(), "the trickler finished first"
        print("5 normal messages beside 11 slow clients: slowest %.3fs"
              % max(took))
        assert max(took) < (5 if instrumented() else 1)
        threads[1].join(30)
        assert trickled.get("reply", "").startswith("250 "), trickled
        # The sitters are gone: their line never arrived whole.
        for s in sitters:
            assert read_reply(s).startswith("421 4.4.2 ")
    finally:
        stop.set()
        threads[0].join()
        for s in sitters:
            s.close()
    assert d.proc.poll() is None
    if not instrumented():
        assert rss(d.proc.pid) < 64 * MIB
    assert len(spool_messages(d.spool)) == 6
