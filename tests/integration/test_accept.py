"""The accept path: real SMTP clients (swaks, Postfix's smtp-source and raw
sockets for what no client does on purpose) into posternd, and what lands in
the spool."""

import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import free_port, read_until, smtp_chat, \
    spool_messages, start_posternd

SWAKS = "/usr/bin/swaks"
SMTP_SOURCE = "/usr/sbin/smtp-source"


def swaks(port, *args, timeout=30):
    return subprocess.run(
        [SWAKS, "--server", "127.0.0.1", "--port", str(port),
         "--helo", "client.test", "--timeout", "10", *args],
        capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def relay(tmp_path, daemon_factory):
    """A posternd on a free port with its spool in tmp_path."""
    def start(conf_extra="", env=None):
        return start_posternd(daemon_factory, tmp_path, conf_extra, env)
    return start


@pytest.mark.skipif(not os.path.exists(SWAKS), reason="swaks missing")
def test_swaks_message_is_spooled(relay):
    d = relay()
    r = swaks(d.port, "--from", "alice@example.org",
              "--to", "bob@example.org,carol@example.org",
              "--header", "Subject: hello", "--body", "line one\n.dot line\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 2.0.0 Ok: queued as" in r.stdout
    msgs = spool_messages(d.spool)
    assert len(msgs) == 1
    env, body = msgs[0]
    assert env["sender"] == "alice@example.org"
    assert env["rcpt"] == ["bob@example.org", "carol@example.org"]
    assert body.startswith(b"Received: from client.test ([127.0.0.1])\r\n")
    assert b"by localhost (postern) with ESMTP id " + env["id"].encode() \
        in body
    assert b"\r\nSubject: hello\r\n" in body
    # Dot-unstuffed, CRLF kept.
    assert b"\r\nline one\r\n.dot line\r\n" in body
    assert int(env["size"]) == len(body)
    d.wait_for("event=accepted id=%s" % env["id"])


@pytest.mark.skipif(not os.path.exists(SWAKS), reason="swaks missing")
def test_swaks_pipelining(relay):
    d = relay()
    r = swaks(d.port, "--pipeline", "--from", "a@example.org",
              "--to", "b@example.org,c@example.org",
              "--add-header", "X-Test: 1")
    assert r.returncode == 0, r.stdout + r.stderr
    env, body = spool_messages(d.spool)[0]
    assert env["rcpt"] == ["b@example.org", "c@example.org"]
    assert b"\r\nX-Test: 1\r\n" in body


def test_dsn_parameters_are_kept(relay):
    d = relay()
    out = smtp_chat(d.port, [
        "EHLO me.test",
        "MAIL FROM:<a@example.org> RET=HDRS ENVID=env+2Bid BODY=8BITMIME",
        "RCPT TO:<b@example.org> NOTIFY=FAILURE,DELAY "
        "ORCPT=rfc822;b+40example.org",
        "DATA", "Subject: dsn\r\n\r\nbody\r\n.", "QUIT"])
    assert out[5].startswith("250 2.0.0 Ok: queued as"), out
    env, _ = spool_messages(d.spool)[0]
    assert env["ret"] == "hdrs"
    assert env["envid"] == "env+2Bid"
    assert env["body"] == "8bitmime"
    assert env["rcpt.notify"] == ["failure,delay"]
    assert env["rcpt.orcpt"] == ["rfc822;b+40example.org"]


def test_ehlo_advertises_extensions(relay):
    d = relay()
    out = smtp_chat(d.port, ["EHLO me.test", "QUIT"])
    assert out[0].startswith("220 localhost ESMTP")
    ehlo = out[1]
    for ext in ("PIPELINING", "SIZE 52428800", "8BITMIME", "SMTPUTF8",
                "ENHANCEDSTATUSCODES", "DSN"):
        assert "250-%s" % ext in ehlo or "250 %s" % ext in ehlo, ehlo
    assert out[2].startswith("221 2.0.0")


def test_sequence_and_simple_commands(relay):
    d = relay()
    out = smtp_chat(d.port, [
        "MAIL FROM:<a@example.org>",       # before EHLO
        "HELO me.test",
        "RCPT TO:<b@example.org>",         # before MAIL
        "DATA",                            # before MAIL
        "MAIL FROM:<a@example.org>",
        "MAIL FROM:<a@example.org>",       # nested
        "DATA",                            # no recipient
        "VRFY bob",
        "NOOP",
        "HELP",
        "EXPN list",
        "FROB",
        "RSET",
        "QUIT"])
    codes = [line[:9] for line in out[1:]]
    assert codes == ["503 5.5.1", "250 local", "503 5.5.1", "503 5.5.1",
                     "250 2.1.0", "503 5.5.1", "554 5.5.1", "252 2.5.0",
                     "250 2.0.0", "214 2.0.0", "502 5.5.1", "500 5.5.1",
                     "250 2.0.0", "221 2.0.0"]


def test_bad_addresses_and_parameters(relay):
    d = relay()
    out = smtp_chat(d.port, [
        "EHLO me.test",
        "MAIL FROM:<a b@example.org>",
        "MAIL FROM:<a@example.org> FOO=BAR",
        "MAIL FROM:<a@example.org> SIZE=abc",
        "MAIL FROM:<\u00e9@example.org>",
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<>",
        "RCPT TO:<b@exa mple.org>",
        "RCPT TO:<b@example.org> NOTIFY=NEVER,SUCCESS",
        "QUIT"])
    codes = [line[:3] for line in out[2:]]
    assert codes == ["501", "555", "501", "553", "250", "501", "501", "501",
                     "221"]
    assert spool_messages(d.spool) == []


def test_size_limits(relay):
    d = relay('limits = { message_size = "64K"; };\n')
    out = smtp_chat(d.port, ["EHLO me.test",
                             "MAIL FROM:<a@example.org> SIZE=70000",
                             "MAIL FROM:<a@example.org> SIZE=1000",
                             "RCPT TO:<b@example.org>", "DATA"])
    assert out[2].startswith("552 5.3.4")
    assert out[3].startswith("250")
    assert out[5].startswith("354")
    # More than announced and more than allowed: refused at the end, and
    # the session goes on.
    s = socket.create_connection(("127.0.0.1", d.port))
    f = s.makefile("rwb")
    f.readline()
    f.write(b"EHLO me.test\r\nMAIL FROM:<a@example.org>\r\n"
            b"RCPT TO:<b@example.org>\r\nDATA\r\n")
    f.flush()
    read_until(f, b"354")
    line = b"x" * 998 + b"\r\n"
    f.write(line * 100 + b".\r\n")
    f.flush()
    assert f.readline().startswith(b"552 5.3.4")
    f.write(b"NOOP\r\n")
    f.flush()
    assert f.readline().startswith(b"250")
    s.close()
    assert spool_messages(d.spool) == []


def test_long_lines(relay):
    d = relay()
    s = socket.create_connection(("127.0.0.1", d.port))
    f = s.makefile("rwb")
    f.readline()
    f.write(b"NOOP " + b"x" * 600 + b"\r\nNOOP\r\n")
    f.flush()
    assert f.readline().startswith(b"500 5.5.2")
    assert f.readline().startswith(b"250")      # the session survives
    f.write(b"EHLO me.test\r\nMAIL FROM:<a@example.org>\r\n"
            b"RCPT TO:<b@example.org>\r\nDATA\r\n")
    f.flush()
    read_until(f, b"354")
    f.write(b"y" * 1001 + b"\r\n.\r\n")
    f.flush()
    assert f.readline().startswith(b"554 5.6.0")
    s.close()
    assert spool_messages(d.spool) == []


SMUGGLING = [
    b"\n.\n",
    b"\r\n.\n",
    b"\n.\r\n",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\r\n.\r\r\n",
]


@pytest.mark.parametrize("end", SMUGGLING)
def test_smuggled_end_of_data_is_refused(relay, end):
    d = relay()
    s = socket.create_connection(("127.0.0.1", d.port))
    f = s.makefile("rwb")
    f.readline()
    f.write(b"EHLO me.test\r\nMAIL FROM:<a@example.org>\r\n"
            b"RCPT TO:<b@example.org>\r\nDATA\r\n")
    f.flush()
    read_until(f, b"354")
    f.write(b"Subject: x\r\n\r\nbody" + end +
            b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.org>"
            b"\r\nDATA\r\nsmuggled\r\n.\r\n")
    f.flush()
    reply = f.readline()
    assert reply.startswith(b"521 5.5.2"), reply
    assert f.readline() == b""      # closed
    s.close()
    assert spool_messages(d.spool) == []


def test_bare_lf_in_commands_closes(relay):
    d = relay()
    s = socket.create_connection(("127.0.0.1", d.port))
    f = s.makefile("rwb")
    f.readline()
    f.write(b"EHLO me.test\nNOOP\r\n")
    f.flush()
    assert f.readline().startswith(b"521 5.5.2")
    assert f.readline() == b""


def test_mail_loop_is_refused(relay):
    d = relay()
    hops = b"".join(b"Received: from hop%d by x; date\r\n" % i
                    for i in range(100))
    s = socket.create_connection(("127.0.0.1", d.port))
    f = s.makefile("rwb")
    f.readline()
    f.write(b"EHLO me.test\r\nMAIL FROM:<a@example.org>\r\n"
            b"RCPT TO:<b@example.org>\r\nDATA\r\n")
    f.flush()
    read_until(f, b"354")
    f.write(hops + b"Subject: loop\r\n\r\nbody\r\n.\r\n")
    f.flush()
    assert f.readline().startswith(b"554 5.4.0")
    assert spool_messages(d.spool) == []


def test_recipient_limit(relay):
    d = relay("limits = { recipients = 100; };\n")
    cmds = ["EHLO me.test", "MAIL FROM:<a@example.org>"]
    cmds += ["RCPT TO:<r%d@example.org>" % i for i in range(101)]
    out = smtp_chat(d.port, cmds + ["QUIT"])
    assert all(line.startswith("250") for line in out[3:103])
    assert out[103].startswith("452 4.5.3")


def test_session_limit(relay):
    d = relay("limits = { sessions = 2; };\n")
    a = socket.create_connection(("127.0.0.1", d.port))
    b = socket.create_connection(("127.0.0.1", d.port))
    assert a.makefile("rb").readline().startswith(b"220")
    assert b.makefile("rb").readline().startswith(b"220")
    c = socket.create_connection(("127.0.0.1", d.port))
    assert c.makefile("rb").readline().startswith(b"421 4.7.0")
    a.close()
    b.close()
    c.close()


def test_allow_list_refuses_others(relay):
    d = relay(env={"POSTERN_ALLOW": "10.0.0.0/8"})
    out = smtp_chat(d.port, [])
    assert out[0].startswith("554 5.7.1")


def test_idle_client_times_out(relay):
    d = relay('limits = { idle = "1s"; };\n')
    s = socket.create_connection(("127.0.0.1", d.port))
    f = s.makefile("rb")
    assert f.readline().startswith(b"220")
    start = time.monotonic()
    assert f.readline().startswith(b"421 4.4.2")
    assert f.readline() == b""
    assert time.monotonic() - start < 10


def test_unix_socket_listener(tmp_path, daemon_factory):
    sock = str(tmp_path / "smtp.sock")
    d = start_posternd(daemon_factory, tmp_path, "",
                       {"POSTERN_LISTEN": "unix:" + sock})
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    f = s.makefile("rwb")
    assert f.readline().startswith(b"220")
    f.write(b"EHLO me.test\r\nMAIL FROM:<a@example.org>\r\n"
            b"RCPT TO:<postmaster>\r\nDATA\r\n")
    f.flush()
    read_until(f, b"354")
    f.write(b"Subject: via unix\r\n\r\nhi\r\n.\r\n")
    f.flush()
    assert f.readline().startswith(b"250 2.0.0")
    env, body = spool_messages(d.spool)[0]
    # <postmaster> goes through the aliases (none) to the default domain.
    assert env["rcpt"] == ["postmaster@localhost"]
    assert body.startswith(b"Received: from me.test (localhost)")


@pytest.mark.skipif(not os.path.exists(SMTP_SOURCE),
                    reason="smtp-source missing")
def test_smtp_source_load(relay):
    d = relay()
    r = subprocess.run(
        [SMTP_SOURCE, "-c", "-s", "5", "-m", "200", "-l", "2048",
         "-f", "load@example.org", "-t", "sink@example.org",
         "127.0.0.1:%d" % d.port], capture_output=True, text=True,
        timeout=120)
    assert r.returncode == 0, r.stderr
    msgs = spool_messages(d.spool)
    assert len(msgs) == 200
    assert len({env["id"] for env, _ in msgs}) == 200


def test_second_daemon_refuses_the_same_spool(tmp_path, daemon_factory):
    d = start_posternd(daemon_factory, tmp_path)
    other = daemon_factory(d.conf, {
        "POSTERN_LISTEN": "127.0.0.1:%d" % free_port(),
        "POSTERN_SPOOL_DIR": d.spool})
    assert other.proc.wait(10) == 1
    other.wait_for("in use by another posternd (pid %d)" % d.proc.pid)
    assert d.proc.poll() is None


STRACE = "/usr/bin/strace"


def send_message(port, body=b"Subject: t\r\n\r\nhello\r\n"):
    """One message over a raw socket; returns the reply to the dot."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        f = s.makefile("rwb")
        f.readline()
        f.write(b"HELO me.test\r\nMAIL FROM:<a@example.org>\r\n"
                b"RCPT TO:<b@example.org>\r\nDATA\r\n")
        f.flush()
        read_until(f, b"354")
        f.write(body + b".\r\n")
        f.flush()
        reply = f.readline().decode()
        f.write(b"QUIT\r\n")
        f.flush()
        return reply


def spool_leftovers(spool):
    return sorted(os.listdir(os.path.join(spool, "tmp")))


@pytest.mark.skipif(not os.path.exists(STRACE), reason="strace missing")
def test_250_only_after_the_commit(tmp_path, daemon_factory):
    """strace shows the message's record written to the log and the log
    flushed (fdatasync of that segment) before the 250 is written to the
    client."""
    port = free_port()
    spool = str(tmp_path / "spool")
    conf = tmp_path / "postern.conf"
    conf.write_text('hostname = "localhost";\nlisten = ( "127.0.0.1:%d" );\n'
                    'spool_dir = "%s";\n' % (port, spool))
    trace = tmp_path / "trace"
    proc = subprocess.Popen(
        [STRACE, "-f", "-qq", "-o", str(trace), "-s", "64", "-e",
         "trace=fsync,fdatasync,pwritev,pwritev2,write,writev,"
         "sendto,sendmsg", conftest_posternd(), "-f", "-c", str(conf)],
        stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert send_message(port).startswith("250 2.0.0 Ok: queued as")
    finally:
        # Stop the traced daemon; strace ends with it.
        for task in os.listdir("/proc/%d/task" % proc.pid):
            with open("/proc/%d/task/%s/children" % (proc.pid, task)) as f:
                for child in f.read().split():
                    os.kill(int(child), signal.SIGTERM)
        proc.wait(15)
    lines = trace.read_text().splitlines()
    # pwritev(SEGMENT, [{iov_base="PSTR\1...", ...}, ...], N, OFFSET)
    write = next(i for i, l in enumerate(lines)
                 if "pwritev" in l and 'iov_base="PSTR\\1' in l)
    segment = re.search(r"pwritev2?\((\d+),", lines[write]).group(1)
    reply = next(i for i, l in enumerate(lines) if "250 2.0.0 Ok: queued" in l)
    assert write < reply
    # "fdatasync(21) = 0", or "fdatasync(21 <unfinished ...>" and its
    # "<... fdatasync resumed>) = 0" when threads interleave in the trace.
    flushed = [i for i, l in enumerate(lines[write:reply], write)
               if re.search(r"fdatasync\(%s[) ]" % segment, l)]
    assert flushed, "no fdatasync of the segment between its write and the 250"
    done = next(i for i, l in enumerate(lines[flushed[0]:], flushed[0])
                if "fdatasync" in l and l.endswith("= 0"))
    assert done < reply, "the 250 left before the flush returned"


def conftest_posternd():
    from conftest import POSTERND
    return POSTERND


def test_kill_mid_data_leaves_nothing(tmp_path, daemon_factory):
    d = start_posternd(daemon_factory, tmp_path)
    s = socket.create_connection(("127.0.0.1", d.port))
    f = s.makefile("rwb")
    f.readline()
    f.write(b"HELO me.test\r\nMAIL FROM:<a@example.org>\r\n"
            b"RCPT TO:<b@example.org>\r\nDATA\r\n")
    f.flush()
    read_until(f, b"354")
    f.write(b"Subject: half\r\n\r\n" + b"x" * 60 + b"\r\n" * 1)
    f.write(b"y" * 70 + b"\r\n" * 5000)
    f.flush()
    time.sleep(0.3)
    d.proc.kill()
    d.proc.wait()
    s.close()
    d2 = start_posternd(daemon_factory, tmp_path)
    assert spool_messages(d2.spool) == []
    assert spool_leftovers(d2.spool) == []


def test_kill_after_250_keeps_the_message(tmp_path, daemon_factory):
    d = start_posternd(daemon_factory, tmp_path)
    reply = send_message(d.port, b"Subject: keep me\r\n\r\nsafe\r\n")
    assert reply.startswith("250 2.0.0 Ok: queued as ")
    queue_id = reply.split()[-1]
    d.proc.kill()
    d.proc.wait()
    d2 = start_posternd(daemon_factory, tmp_path)
    msgs = spool_messages(d2.spool)
    assert [env["id"] for env, _ in msgs] == [queue_id]
    assert b"\r\nSubject: keep me\r\n\r\nsafe\r\n" in msgs[0][1]


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs",
                        str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % r.stderr.decode())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def test_full_disk_gives_452_and_recovers(tmp_path, daemon_factory,
                                          small_fs):
    """Below the free-space reserve (on a 2 MiB volume an eighth of it)
    MAIL gets 452 4.3.1; the daemon stays up and accepts again once there
    is room."""
    d = start_posternd(daemon_factory, tmp_path, env={
        "POSTERN_SPOOL_DIR": str(small_fs / "spool")})
    st = os.statvfs(str(small_fs))
    with open(str(small_fs / "filler"), "wb") as f:
        f.write(b"\0" * (st.f_bavail * st.f_frsize - 64 * 1024))
    out = smtp_chat(d.port, ["HELO me.test", "MAIL FROM:<a@example.org>"])
    assert out[2].startswith("452 4.3.1"), out
    d.wait_for("event=spool-full")
    subprocess.run(["mount", "-o", "remount,size=200m", str(small_fs)],
                   check=True)
    assert send_message(d.port).startswith("250 2.0.0")
    assert len(spool_messages(str(small_fs / "spool"))) == 1


@pytest.mark.skipif(not os.path.exists(STRACE), reason="strace missing")
@pytest.mark.parametrize("fault", ["fdatasync:error=EIO",
                                   "pwritev:error=EIO"])
def test_disk_error_gives_451_and_leaves_nothing(tmp_path, daemon_factory,
                                                 fault):
    """Injected into the running daemon's system calls: the commit fails,
    the client is told 451 4.3.0, and the daemon goes on; the next batch
    cancels the failed message in the log, so it never comes back.
    ENOSPC on writes is the tmpfs tests' business: injected into write(2)
    it would hit replies and logs as well."""
    d = start_posternd(daemon_factory, tmp_path)
    tracer = subprocess.Popen(
        [STRACE, "-f", "-qq", "-p", str(d.proc.pid), "-o", "/dev/null",
         "-e", "trace=" + fault.split(":")[0], "-e", "inject=" + fault +
         ":when=1+"], stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)     # let strace attach to every thread
        reply = send_message(d.port)
        assert reply.startswith("451 4.3.0"), reply
    finally:
        tracer.terminate()
        tracer.wait(10)
    d.wait_for("failed", timeout=10)
    assert spool_leftovers(d.spool) == []
    assert d.proc.poll() is None
    reply = send_message(d.port)
    assert reply.startswith("250 2.0.0"), reply
    assert [m[0]["id"] for m in spool_messages(d.spool)] == [reply.split()[-1]]


def test_disk_full_while_writing_gives_451(tmp_path, daemon_factory):
    """The reserve lets MAIL through, but the message is bigger than the
    space left: the write fails with ENOSPC, the client reads 451 4.3.0 at
    the end of its data, and nothing is left behind."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=66m", "tmpfs",
                        str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs")
    try:
        d = start_posternd(daemon_factory, tmp_path,
                           'limits = { message_size = "100M"; };\n',
                           {"POSTERN_SPOOL_DIR": str(mnt / "spool")})
        line = b"z" * 998 + b"\r\n"
        body = b"Subject: big\r\n\r\n" + line * (70 * 1024)   # 70 MiB
        assert send_message(d.port, body).startswith("451 4.3.0")
        d.wait_for("event=spool-write-failed")
        assert spool_messages(str(mnt / "spool")) == []
        assert spool_leftovers(str(mnt / "spool")) == []
        assert d.proc.poll() is None
        assert send_message(d.port).startswith("250 2.0.0")
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def test_aliases_apply_over_smtp_at_localhost(tmp_path, daemon_factory):
    """Whichever way the mail came in: RCPT TO:<root@localhost> (the
    host's own name here) goes where the alias says."""
    from conftest import send_raw
    d = start_posternd(daemon_factory, tmp_path,
                       'aliases = { root = ( "admin@example.org", '
                       '"ops@example.org" ); };\n')
    reply = send_raw(d.port, "cron@localhost", ["root@localhost",
                                                "bob@example.net"],
                     b"Subject: cron\r\n\r\nx\r\n")
    assert reply.startswith("250 2.0.0"), reply
    env, _ = spool_messages(d.spool)[0]
    assert env["rcpt"] == ["admin@example.org", "ops@example.org",
                           "bob@example.net"]


def test_bare_local_names_from_local_clients(tmp_path, daemon_factory):
    """A local client may write MAIL FROM:<cron> and RCPT TO:<root>, as
    Postfix lets it: the sender is qualified with the default domain,
    the recipient goes through the aliases."""
    from conftest import send_raw
    d = start_posternd(daemon_factory, tmp_path,
                       'default_domain = "example.org";\n'
                       'aliases = { root = "admin@example.net"; };\n')
    reply = send_raw(d.port, "cron", ["root", "www-data"],
                     b"Subject: x\r\n\r\nhi\r\n")
    assert reply.startswith("250 2.0.0"), reply
    env, _ = spool_messages(d.spool)[0]
    assert env["sender"] == "cron@example.org"
    assert env["rcpt"] == ["admin@example.net", "www-data@example.org"]
    # A quoted local part without a domain is still no address.
    replies = smtp_chat(d.port, ["EHLO me.test",
                                 "MAIL FROM:<a@example.org>",
                                 'RCPT TO:<"root">'])
    assert replies[-1].startswith("501 5.1.3"), replies
