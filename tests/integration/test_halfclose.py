"""Clients that half-close: they write their whole request, then
shutdown(SHUT_WR) (as `nc -N`, socat and many scripts do), and read the
answer.  A half-closed connection can still receive: every reply that
was due must arrive, the 250 after the final dot first of all (a client
that misses it sends the message again).  The SMTP listener, sendmail
-bs over stdin/stdout, the control socket and the metrics listener."""

import os
import socket
import subprocess
import time

from conftest import BUILD, free_port, spool_messages, start_posternd

SENDMAIL = os.path.join(BUILD, "daemon", "postern-sendmail")
POSTERN = os.path.join(BUILD, "daemon", "postern")

TRANSACTION = (b"EHLO half.test\r\n"
               b"MAIL FROM:<a@example.org>\r\n"
               b"RCPT TO:<b@example.org>\r\n"
               b"DATA\r\n"
               b"Subject: half-closed\r\n\r\nbody\r\n.\r\n")


def read_all(sock, timeout=15):
    """Everything the server sends until it closes (bounded in time)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    raise AssertionError("the server did not close: %r" % data)


def codes(data):
    """The reply codes, one per reply (continuation lines left out)."""
    return [line[:3] for line in data.decode().split("\r\n")
            if line and line[3:4] != "-"]


def half_closed(port, payload):
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return read_all(s)


def test_250_after_dot_reaches_a_half_closed_client(tmp_path,
                                                    daemon_factory):
    """Each command after its reply, then the body, the dot and
    shutdown(SHUT_WR) at once: the 250 with the queue id arrives."""
    d = start_posternd(daemon_factory, tmp_path)
    with socket.create_connection(("127.0.0.1", d.port), timeout=15) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"220 ")
        for c in [b"HELO half.test", b"MAIL FROM:<a@example.org>",
                  b"RCPT TO:<b@example.org>", b"DATA"]:
            s.sendall(c + b"\r\n")
            assert f.readline()[:1] in (b"2", b"3")
        s.sendall(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        s.shutdown(socket.SHUT_WR)
        reply = f.readline().decode()
        assert f.readline() == b""
    assert reply.startswith("250 2.0.0 Ok: queued as "), reply
    msgs = spool_messages(d.spool)
    assert len(msgs) == 1
    assert msgs[0][0]["id"] in reply
    assert not any("event=client-gone" in line for line in d.lines)


def test_pipelined_transaction_then_shutdown_gets_every_reply(
        tmp_path, daemon_factory):
    d = start_posternd(daemon_factory, tmp_path)
    out = half_closed(d.port, TRANSACTION + b"QUIT\r\n")
    assert codes(out) == ["220", "250", "250", "250", "354", "250",
                          "221"], out
    assert len(spool_messages(d.spool)) == 1
    # Without QUIT: the 250 all the same, then the close.
    out = half_closed(d.port, TRANSACTION)
    assert codes(out) == ["220", "250", "250", "250", "354", "250"], out
    assert len(spool_messages(d.spool)) == 2
    # Two messages in one write, the second unfinished: only the first
    # is accepted, and nothing is left of the second.
    out = half_closed(d.port, TRANSACTION + b"MAIL FROM:<c@example.org>\r\n"
                      b"RCPT TO:<d@example.org>\r\nDATA\r\ncut\r\n")
    assert codes(out) == ["220", "250", "250", "250", "354", "250", "250",
                          "250", "354"], out
    assert len(spool_messages(d.spool)) == 3
    assert os.listdir(os.path.join(d.spool, "tmp")) == []
    assert d.proc.poll() is None


def test_reset_connection_commits_but_writes_nothing(tmp_path,
                                                    daemon_factory):
    """An RST (SO_LINGER 0) right after the dot: nobody is left to
    answer; the session ends without touching the dead socket."""
    d = start_posternd(daemon_factory, tmp_path)
    s = socket.create_connection(("127.0.0.1", d.port), timeout=15)
    s.sendall(TRANSACTION)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    # The session is gone; the daemon goes on serving.
    out = half_closed(d.port, b"QUIT\r\n")
    assert codes(out) == ["220", "221"], out
    assert d.proc.poll() is None


def test_sendmail_bs_stdin_eof_after_dot(tmp_path):
    conf = tmp_path / "postern.conf"
    conf.write_text('hostname = "relay.test";\nspool_dir = "%s";\n'
                    % (tmp_path / "spool"))
    r = subprocess.run([POSTERN, "init-spool", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([SENDMAIL, "-C", str(conf), "-bs"],
                       input=TRANSACTION, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert codes(r.stdout) == ["220", "250", "250", "250", "354", "250"], \
        r.stdout
    msgs = spool_messages(str(tmp_path / "spool"))
    assert len(msgs) == 1
    assert msgs[0][0]["id"] in r.stdout.decode().split("\r\n")[-2]


def control_half_closed(path, request):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(15)
        s.connect(path)
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        return read_all(s)


def test_control_request_then_shutdown_gets_the_answer(tmp_path,
                                                       daemon_factory):
    d = start_posternd(daemon_factory, tmp_path)
    path = os.path.join(d.spool, "control")
    for _ in range(5):
        assert control_half_closed(path, b"status text\n").startswith(
            b"posternd ")
        assert control_half_closed(path, b"flush\n") == b"ok 0\n"
        # A request whose line the end of input ends.
        assert control_half_closed(path, b"flush") == b"ok 0\n"
    assert control_half_closed(path, b"") == b""


def test_metrics_request_then_shutdown_gets_the_answer(tmp_path,
                                                       daemon_factory):
    mport = free_port()
    d = start_posternd(daemon_factory, tmp_path,
                       'metrics_listen = "127.0.0.1:%d";\n' % mport)
    d.wait_for("event=metrics-listening")
    for _ in range(5):
        out = half_closed(mport, b"GET /metrics HTTP/1.0\r\n\r\n")
        assert out.startswith(b"HTTP/1.0 200 OK\r\n"), out
        assert out.endswith(b"# EOF\n"), out
    # An unfinished request: closed without an answer, nothing else.
    assert half_closed(mport, b"GET /metrics HTTP/1.0\r\n") == b""
    assert d.proc.poll() is None
