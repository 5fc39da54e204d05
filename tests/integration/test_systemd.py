"""Operating posternd: sd_notify, socket activation, reload, status and
metrics, and the unit's hardening score."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import POSTERN, POSTERND, SOURCE, free_port, read_until, \
    send_raw, start_posternd

ANALYZE = "/usr/bin/systemd-analyze"
ACTIVATE = "/usr/bin/systemd-socket-activate"


@pytest.mark.skipif(not os.path.exists(ANALYZE),
                    reason="systemd-analyze missing")
def test_unit_hardening_score():
    r = subprocess.run([ANALYZE, "security", "--offline=yes",
                        os.path.join(SOURCE, "systemd", "postern.service")],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for postern.service: "
                  r"([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    print("systemd-analyze security: %s" % m.group(1))
    assert float(m.group(1)) <= 2.0


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(10)
    yield path, s
    s.close()


def notifications(sock, until, timeout=10):
    """Datagrams received until one contains 'until'."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            break
        if until in got[-1]:
            return got
    raise AssertionError("no %r in %r" % (until, got))


def test_sd_notify_ready_status_reload_stop(tmp_path, daemon_factory,
                                            notify_socket):
    path, sock = notify_socket
    d = start_posternd(daemon_factory, tmp_path, env={
        "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    got = notifications(sock, "READY=1")
    got += notifications(sock, "WATCHDOG=1")
    status = [g for g in got if "STATUS=queue 0" in g]
    assert status, got
    d.signal(signal.SIGHUP)
    got = notifications(sock, "RELOADING=1")
    got += notifications(sock, "READY=1")
    d.stop()
    notifications(sock, "STOPPING=1")


@pytest.mark.skipif(not os.path.exists(ACTIVATE),
                    reason="systemd-socket-activate missing")
def test_socket_activation(tmp_path):
    port = free_port()
    conf = tmp_path / "postern.conf"
    conf.write_text('hostname = "localhost";\nlisten = ( "127.0.0.1:%d" );\n'
                    'spool_dir = "%s";\n' % (port, tmp_path / "spool"))
    proc = subprocess.Popen([ACTIVATE, "-l", "127.0.0.1:%d" % port,
                             POSTERND, "-f", "-c", str(conf)],
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                reply = send_raw(port, "a@example.org", ["b@example.org"],
                                 b"\r\nactivated\r\n")
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert reply.startswith("250 2.0.0")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert "event=listen-activated listen=127.0.0.1:%d" % port in err


def test_reload_keeps_sessions_and_refuses_a_broken_file(tmp_path,
                                                         daemon_factory):
    d = start_posternd(daemon_factory, tmp_path)
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    f = s.makefile("rwb")
    assert f.readline().startswith(b"220")
    f.write(b"EHLO me.test\r\n")
    f.flush()
    while f.readline()[3:4] == b"-":
        pass
    r = subprocess.run([POSTERN, "reload", "-c", d.conf],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr
    d.wait_for("event=reloaded")
    # The session started before the reload goes on.
    f.write(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
            b"DATA\r\n")
    f.flush()
    read_until(f, b"354")
    f.write(b"\r\nsurvived\r\n.\r\nQUIT\r\n")
    f.flush()
    assert f.readline().startswith(b"250 2.0.0")
    s.close()
    with open(d.conf, "a") as c:
        c.write('limits = { idle = "4x"; };\n')
    r = subprocess.run([POSTERN, "reload", "-c", d.conf],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "invalid" in r.stderr
    assert 'limits.idle: "4x" is not a duration' in r.stderr
    assert d.proc.poll() is None


def test_status_and_metrics_match_what_was_sent(tmp_path, daemon_factory):
    mport = free_port()
    d = start_posternd(daemon_factory, tmp_path,
                       'metrics_listen = "127.0.0.1:%d";\n' % mport)
    for i in range(3):
        send_raw(d.port, "a@example.org", ["b%d@example.org" % i],
                 b"\r\nx\r\n")
    st = json.loads(subprocess.run(
        [POSTERN, "status", "-c", d.conf, "--json"], capture_output=True,
        text=True, timeout=10, check=True).stdout)
    assert st["queue"]["total"] == 3
    m = subprocess.run([POSTERN, "metrics", "-c", d.conf],
                       capture_output=True, text=True, timeout=10,
                       check=True).stdout
    assert "postern_messages_accepted_total 3\n" in m
    assert "postern_sessions_total 3\n" in m
    assert "postern_sessions_refused_total 0\n" in m
    assert m.endswith("# EOF\n")
    # OpenMetrics: every sample follows the TYPE line of its own family.
    family = None
    for line in m.splitlines():
        if line.startswith("# TYPE "):
            family, kind = line.split()[2:4]
        elif line and not line.startswith("#"):
            name = line.split("{")[0].split()[0]
            allowed = {family}
            if kind == "counter":
                allowed = {family + "_total", family + "_created"}
            assert name in allowed, (line, family)
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport,
                                timeout=10) as resp:
        body = resp.read().decode()
        assert resp.headers["Content-Type"].startswith(
            "application/openmetrics-text")
    assert "postern_messages_accepted_total 3\n" in body
    assert 'postern_queue_messages{state="waiting"}' in body or \
        'postern_queue_messages{state="due"} 3' in body


def first_log_line(tmp_path, journal_stream):
    """posternd's first log line on a pipe, with JOURNAL_STREAM set to
    journal_stream(pipe's stat) or left out."""
    port = free_port()
    conf = tmp_path / "postern.conf"
    conf.write_text('listen = ( "127.0.0.1:%d" );\nspool_dir = "%s";\n'
                    % (port, tmp_path / "spool"))
    r, w = os.pipe()
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    if journal_stream is not None:
        env["JOURNAL_STREAM"] = journal_stream(os.fstat(w))
    proc = subprocess.Popen([POSTERND, "-f", "-c", str(conf)], env=env,
                            stdout=subprocess.DEVNULL, stderr=w)
    os.close(w)
    try:
        with os.fdopen(r) as f:
            return f.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_journal_format_only_when_stderr_is_the_journal(tmp_path):
    # systemd's own variable names stderr: priority prefixes, no stamp.
    line = first_log_line(tmp_path,
                          lambda st: "%d:%d" % (st.st_dev, st.st_ino))
    assert line.startswith("<6>level=info event="), line
    # A stray variable (inherited, or naming another file) is ignored.
    for stray in ("1:2", "garbage", ""):
        line = first_log_line(tmp_path, lambda st, v=stray: v)
        assert re.match(r"\d{4}-\d\d-\d\dT[0-9:.]+Z posternd\[\d+\] "
                        r"level=info event=", line), (stray, line)
