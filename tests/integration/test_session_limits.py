"""Clients that hold SMTP sessions without sending mail: the per-request
deadline (limits.idle: the time to send one whole command line, which
bytes trickled one at a time do not extend), the minimum data rate
during DATA (limits.min_data_rate), the junk command limit
(limits.junk_commands) and, when the sessions in use reach
limits.stress_threshold, the shorter stress limits that free the
sessions held by such clients so that a client which retries like an
MTA gets its mail accepted.

Every attacker here is bounded: a fixed number of connections, each
sending for a few seconds at most, and each test well under a minute.
"""

import os
import resource
import socket
import threading
import time

from conftest import spool_messages, start_posternd


def read_reply(f):
    """One reply (its last line) from a socket file; '' at EOF."""
    while True:
        line = f.readline()
        if not line:
            return ""
        line = line.decode("ascii", "replace")
        if line[3:4] != "-":
            return line


def log_lines(d, text):
    return [line for line in d.lines if text in line]


def test_noop_flood_gets_421_after_the_junk_limit(tmp_path, daemon_factory):
    """The default junk limit (100): the 101st NOOP is answered 421 4.7.0
    and the session closes; the event names the client."""
    d = start_posternd(daemon_factory, tmp_path)
    with socket.create_connection(("127.0.0.1", d.port), timeout=15) as s:
        f = s.makefile("rb")
        assert read_reply(f).startswith("220 ")
        s.sendall(b"EHLO flood.test\r\n" + b"NOOP\r\n" * 150)
        assert read_reply(f).startswith("250 ")
        replies = []
        while True:
            r = read_reply(f)
            if not r:
                break
            replies.append(r)
    assert len(replies) == 101, replies[-3:]
    assert all(r.startswith("250 2.0.0 ") for r in replies[:100])
    assert replies[100].startswith("421 4.7.0 "), replies[100]
    line = d.lines[d.wait_for("event=junk-limit")]
    assert "client=127.0.0.1:" in line, line


def test_accepted_message_resets_the_junk_count(tmp_path, daemon_factory):
    """RSET or NOOP between messages on a long-lived connection is what
    real clients do: each accepted message starts the count again."""
    d = start_posternd(daemon_factory, tmp_path,
                       "limits = { junk_commands = 3; };\n")
    message = (b"RSET\r\nNOOP\r\nMAIL FROM:<a@example.org>\r\n"
               b"RCPT TO:<b@example.org>\r\nDATA\r\nSubject: x\r\n\r\n"
               b"y\r\n.\r\n")
    with socket.create_connection(("127.0.0.1", d.port), timeout=15) as s:
        f = s.makefile("rb")
        assert read_reply(f).startswith("220 ")
        s.sendall(b"EHLO keep.test\r\n" + message * 5 +
                  b"NOOP\r\nVRFY x\r\nHELP\r\nHELO again.test\r\n")
        replies = []
        while True:
            r = read_reply(f)
            if not r:
                break
            replies.append(r[:3])
    assert replies == ["250"] + ["250", "250", "250", "250", "354",
                                 "250"] * 5 + ["250", "252", "214",
                                               "421"], replies
    assert len(spool_messages(d.spool)) == 5


def test_trickled_command_line_is_cut_at_its_deadline(tmp_path,
                                                      daemon_factory):
    """One byte every 300 ms of a line that never ends: each byte used to
    restart the idle timer; now the line must be whole within idle."""
    d = start_posternd(daemon_factory, tmp_path,
                       'limits = { idle = "2s"; };\n')
    with socket.create_connection(("127.0.0.1", d.port), timeout=15) as s:
        f = s.makefile("rb")
        assert read_reply(f).startswith("220 ")
        s.setblocking(False)
        start = time.monotonic()
        got = b""
        for i in range(60):             # 18 s at most
            try:
                s.send(b"x")
            except OSError:
                break
            time.sleep(0.3)
            try:
                got += s.recv(1024)
            except BlockingIOError:
                continue
            except OSError:
                break
            if got.endswith(b"\n"):
                break
        elapsed = time.monotonic() - start
    assert got.startswith(b"421 4.4.2 "), got
    print("trickled command line cut after %.1fs" % elapsed)
    line = d.lines[d.wait_for("event=timeout")]
    assert "client=127.0.0.1:" in line and "state=command" in line, line


def test_trickled_message_below_the_data_rate_is_cut(tmp_path,
                                                     daemon_factory):
    """After 354, one byte every 200 ms (5 bytes/s) against the default
    min_data_rate: the deadline grows by 2 ms a byte and runs out; the
    message is not queued."""
    d = start_posternd(daemon_factory, tmp_path,
                       'limits = { idle = "2s"; };\n')
    with socket.create_connection(("127.0.0.1", d.port), timeout=15) as s:
        f = s.makefile("rb")
        assert read_reply(f).startswith("220 ")
        for c in [b"HELO slow.test", b"MAIL FROM:<a@example.org>",
                  b"RCPT TO:<b@example.org>", b"DATA"]:
            s.sendall(c + b"\r\n")
            assert read_reply(f)[:1] in ("2", "3")
        s.setblocking(False)
        got = b""
        for i in range(90):             # 18 s at most
            try:
                s.send(b"x\r\n"[i % 3:i % 3 + 1])
            except OSError:
                break
            time.sleep(0.2)
            try:
                got += s.recv(1024)
            except BlockingIOError:
                continue
            except OSError:
                break
            if got.endswith(b"\n"):
                break
    assert got.startswith(b"421 4.4.2 "), got
    assert "state=data" in d.lines[d.wait_for("event=timeout")]
    assert spool_messages(d.spool) == []


def test_slow_message_above_the_data_rate_is_accepted(tmp_path,
                                                      daemon_factory):
    """A message sent in pieces, slower than idle allows for the whole
    message but faster than min_data_rate: accepted."""
    d = start_posternd(daemon_factory, tmp_path,
                       'limits = { idle = "1s"; min_data_rate = 2000; };\n')
    with socket.create_connection(("127.0.0.1", d.port), timeout=15) as s:
        f = s.makefile("rb")
        assert read_reply(f).startswith("220 ")
        for c in [b"HELO slow.test", b"MAIL FROM:<a@example.org>",
                  b"RCPT TO:<b@example.org>", b"DATA"]:
            s.sendall(c + b"\r\n")
            assert read_reply(f)[:1] in ("2", "3")
        s.sendall(b"Subject: slow\r\n\r\n")
        for _ in range(10):             # 3 s in all, 3 KB/s
            s.sendall(b"z" * 900 + b"\r\n")
            time.sleep(0.3)
        s.sendall(b".\r\n")
        assert read_reply(f).startswith("250 "), "not accepted"
    assert len(spool_messages(d.spool)) == 1


def test_held_sessions_are_freed_for_a_retrying_client(tmp_path,
                                                       daemon_factory):
    """Every one of limits.sessions (4) held: two connections trickle a
    command line a byte a second, two send a NOOP every half second.
    With idle at a minute none of them would ever be cut; under stress
    (all sessions in use) the stress deadline and junk limit free them,
    and a client that retries after each 421 4.7.0, twice a second,
    gets its message accepted.  Stress is logged once on, once off."""
    d = start_posternd(daemon_factory, tmp_path,
                       'limits = { sessions = 4; idle = "1m"; };\n')
    stop = threading.Event()
    conns = []
    for _ in range(4):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        assert s.recv(1024).startswith(b"220 ")
        s.setblocking(False)
        conns.append(s)

    def attack():
        """Each connection sends until it is cut or 45 s have passed."""
        start = time.monotonic()
        tick = 0
        while not stop.is_set() and time.monotonic() - start < 45:
            for i, s in enumerate(conns):
                if s.fileno() == -1:
                    continue
                try:
                    if i < 2:
                        if tick % 2 == 0:
                            s.send(b"x")
                    else:
                        s.send(b"NOOP\r\n")
                    while s.recv(4096):
                        pass
                    s.close()           # EOF: the server cut it
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()
            tick += 1
            stop.wait(0.5)

    attacker = threading.Thread(target=attack)
    attacker.start()
    try:
        assert log_lines(d, "event=refused") == []
        accepted = None
        tries = 0
        start = time.monotonic()
        while time.monotonic() - start < 40:
            tries += 1
            with socket.create_connection(("127.0.0.1", d.port),
                                          timeout=10) as s:
                f = s.makefile("rb")
                greeting = read_reply(f)
                if greeting.startswith("421 4.7.0 "):
                    time.sleep(0.5)
                    continue
                assert greeting.startswith("220 "), greeting
                for c in [b"HELO mta.test", b"MAIL FROM:<a@example.org>",
                          b"RCPT TO:<b@example.org>", b"DATA"]:
                    s.sendall(c + b"\r\n")
                    assert read_reply(f)[:1] in ("2", "3")
                s.sendall(b"Subject: got in\r\n\r\nx\r\n.\r\nQUIT\r\n")
                accepted = read_reply(f)
                break
        elapsed = time.monotonic() - start
        assert accepted is not None and accepted.startswith("250 "), \
            "no session within 40 s (%d tries)" % tries
        print("accepted after %.1fs and %d tries" % (elapsed, tries))
        # The tricklers are cut at the stress deadline.
        line = d.lines[d.wait_for("event=timeout", timeout=20)]
        assert "state=command" in line, line
    finally:
        stop.set()
        attacker.join()
        for s in conns:
            s.close()
    assert len(spool_messages(d.spool)) == 1
    assert len(log_lines(d, "event=stress-begin")) == 1
    d.wait_for("event=stress-end")
    assert len(log_lines(d, "event=stress-end")) == 1
    assert "stress=yes" in log_lines(d, "event=junk-limit")[0]
    assert d.proc.poll() is None


def test_accept_errors_at_the_descriptor_limit_are_rate_limited(
        tmp_path, daemon_factory):
    """posternd at its descriptor limit (RLIMIT_NOFILE lowered on the
    running process) with connections waiting: accept fails with EMFILE
    every 100 ms.  One accept-error line, not thirty; once descriptors
    are free again one line tells how many were not logged."""
    d = start_posternd(daemon_factory, tmp_path)
    pid = d.proc.pid
    used = len(os.listdir("/proc/%d/fd" % pid))
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (used + 3, hard))
    clients = []
    try:
        for _ in range(20):
            clients.append(socket.create_connection(("127.0.0.1", d.port),
                                                    timeout=10))
        d.wait_for("event=accept-error")
        time.sleep(3)
        errors = log_lines(d, "event=accept-error")
        assert len(errors) == 1, errors
        assert "Too many open files" in errors[0], errors[0]
    finally:
        for s in clients:
            s.close()
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    line = d.lines[d.wait_for("event=accept-resumed")]
    suppressed = int(line.split("suppressed=")[1].split()[0])
    assert suppressed >= 10, line
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
        assert s.recv(1024).startswith(b"220 ")
