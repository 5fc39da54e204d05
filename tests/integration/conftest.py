"""Shared fixtures: where the programs are, free ports, a running posternd."""

import glob
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

BUILD = os.environ.get("POSTERN_BUILD_DIR", "build")
SOURCE = os.environ.get("POSTERN_SOURCE_ROOT", ".")
POSTERND = os.path.join(BUILD, "daemon", "posternd")
POSTERN = os.path.join(BUILD, "daemon", "postern")
POSTERN_SENDMAIL = os.path.join(BUILD, "daemon", "postern-sendmail")


SANITIZER_MARK = re.compile(r"ERROR: (Address|Leak|Undefined)Sanitizer|"
                            r"runtime error: |VALGRIND-ERROR-BEGIN")

# POSTERN_VALGRIND=1 (.ci/quickstart test --valgrind): posternd runs under
# memcheck, each of its errors and definite or indirect leaks marked with
# a line that SANITIZER_MARK finds.
VALGRIND = os.environ.get("POSTERN_VALGRIND") == "1"
VALGRIND_ARGV = ["valgrind", "--error-exitcode=99", "--leak-check=full",
                 "--errors-for-leak-kinds=definite,indirect",
                 "--show-leak-kinds=definite,indirect", "--track-fds=no",
                 "-q", "--error-markers=VALGRIND-ERROR-BEGIN,"
                 "VALGRIND-ERROR-END"]


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """A posternd in the foreground whose log lines are collected."""

    def __init__(self, conf, env=None, args=()):
        self.lines = []
        self.cond = threading.Condition()
        full_env = dict(os.environ)
        full_env.pop("JOURNAL_STREAM", None)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            (VALGRIND_ARGV if VALGRIND else []) +
            [POSTERND, "-f", "-c", conf, *args],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
            env=full_env, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, text, timeout=10, start=0):
        """Waits for a log line containing 'text'; returns its index."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    if text in self.lines[i]:
                        return i
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None
                                 and not self.reader.is_alive()):
                    raise AssertionError(
                        "no log line with %r; log:\n%s"
                        % (text, "\n".join(self.lines)))
                self.cond.wait(min(left, 0.2))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("posternd did not stop on SIGTERM")


@pytest.fixture
def daemon_factory():
    started = []

    def start(conf, env=None, args=()):
        d = Daemon(conf, env, args)
        started.append(d)
        return d

    yield start
    reports = []
    for d in started:
        if d.proc.poll() is None:
            # Stopped in order, so that a sanitizer build reports leaks.
            d.proc.send_signal(signal.SIGTERM)
            try:
                d.proc.wait(20)
            except subprocess.TimeoutExpired:
                d.proc.kill()
                d.proc.wait()
        d.reader.join(5)
        # Each report with what follows it: the stacks say where.
        for i, line in enumerate(d.lines):
            if SANITIZER_MARK.search(line):
                reports += d.lines[i:i + 60]
    assert not reports, "sanitizer reports:\n" + "\n".join(reports)


PEER = os.path.join(os.path.dirname(__file__), "peers", "aiosmtpd_peer.py")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A throwaway CA and a server certificate for localhost/127.0.0.1,
    plus a self-signed one nobody trusts."""
    d = tmp_path_factory.mktemp("pki")

    def run(*args):
        subprocess.run(["openssl", *args], check=True, cwd=d,
                       capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=postern test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=localhost")
    (d / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey",
        "ca.key", "-CAcreateserial", "-days", "2", "-out", "server.pem",
        "-extfile", "ext")
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "self.key", "-out", "self.pem", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    return d


class Peer:
    def __init__(self, proc, port, maildir):
        self.proc, self.port, self.maildir = proc, port, maildir

    def messages(self):
        out = []
        for name in sorted(os.listdir(self.maildir)):
            if name.endswith(".eml"):
                with open(os.path.join(self.maildir, name), "rb") as f:
                    out.append(f.read())
        return out


@pytest.fixture
def peer(tmp_path, pki):
    started = []

    def start(mode="plain", auth=None, mechs=None, plaintext_auth=False,
              tls12=False, cert="server", port=None, extra=()):
        port = port or free_port()
        maildir = tmp_path / ("mail-%d" % port)
        maildir.mkdir(exist_ok=True)
        ready = tmp_path / ("ready-%d" % port)
        args = ["/usr/bin/python3", PEER,
                "--port", str(port), "--mode", mode,
                "--maildir", str(maildir), "--ready", str(ready),
                "--tls-cert", str(pki / (cert + ".pem")),
                "--tls-key", str(pki / (cert + ".key"))]
        if auth:
            args += ["--auth", auth]
        if mechs:
            args += ["--auth-mechs", mechs]
        if plaintext_auth:
            args += ["--auth-plaintext"]
        if tls12:
            args += ["--tls12-only"]
        args += list(extra)
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        started.append(proc)
        deadline = time.monotonic() + 15
        while not ready.exists():
            assert proc.poll() is None, "aiosmtpd did not start"
            assert time.monotonic() < deadline, "aiosmtpd not ready"
            time.sleep(0.05)
        ready.unlink()
        return Peer(proc, port, str(maildir))

    yield start
    for p in started:
        p.kill()
        p.wait()



def wait_until(pred, timeout=20, what="condition"):
    """Polls 'pred' until it holds; fails the test after 'timeout'
    seconds, naming 'what' it waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


def start_posternd(daemon_factory, tmp_path, conf_extra="", env=None):
    """Starts posternd on a free loopback port with its spool under
    tmp_path; returns the Daemon with .port, .spool and .conf set."""
    port = free_port()
    spool = str(tmp_path / "spool")
    conf = tmp_path / "postern.conf"
    conf.write_text('hostname = "localhost";\n'
                    'listen = ( "127.0.0.1:%d" );\n'
                    'spool_dir = "%s";\n'
                    'aliases_file = "";\n%s' % (port, spool, conf_extra))
    d = daemon_factory(str(conf), env)
    d.port, d.spool, d.conf = port, spool, str(conf)
    d.wait_for("event=ready", timeout=60 if VALGRIND else 10)
    return d


def _unescape(value):
    out = bytearray()
    i = 0
    raw = value.encode()
    while i < len(raw):
        if raw[i:i + 1] == b"%":
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "replace")


def read_envelope(path):
    """An envelope file as a dict; rcpt and rcpt.* keys as lists."""
    with open(path) as f:
        return parse_envelope(f.read())


def parse_envelope(text):
    """An envelope record's text as a dict; rcpt and rcpt.* as lists."""
    env = {}
    lines = text.split("\n")
    assert lines[0] == "postern-envelope 1", lines[0]
    for line in lines[1:]:
        if not line or line.startswith("end "):
            continue
        key, _, value = line.partition(" ")
        value = _unescape(value)
        if key == "rcpt" or key.startswith("rcpt."):
            env.setdefault(key, []).append(value)
        else:
            env[key] = value
    return env


# Spool format 2 (doc/spool.md), read here on its own, without postern's
# code: the tests then check the format as written, not as read back.
REC_HEADER = 32


def _records(data, start):
    """(offset, type, flags, id, envelope text, data) of each whole record
    from 'start'; stops at the first that is not (the reader's finer
    judgement of damage is for the unit tests)."""
    off = start
    while off + REC_HEADER <= len(data):
        h = data[off:off + REC_HEADER]
        if h[:4] != b"PSTR":
            return
        rtype, flags = h[4], h[5]
        (rid, env_len, data_len) = struct.unpack_from("<QII", h, 8)
        end = off + REC_HEADER + env_len + data_len
        if end > len(data):
            return
        env = data[off + REC_HEADER:off + REC_HEADER + env_len]
        yield (off, rtype, flags, "%016x" % rid, env.decode("utf-8"),
               data[off + REC_HEADER + env_len:end])
        off = (end + 7) & ~7


def spool_raw(spool):
    """Every committed message as {id: [envelope text, body bytes]}: the
    drops in incoming/, then the log replayed segment by segment."""
    msgs = {}

    def body_of(rid, flags, data):
        if flags & 1:       # EXTERNAL: in bodies/ID
            boff, blen = struct.unpack("<QQ", data)
            with open(os.path.join(spool, "bodies", rid), "rb") as f:
                f.seek(boff)
                return f.read(blen)
        return data

    def replay(path, start):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return          # delivered, or given back, while we looked
        for off, rtype, flags, rid, env, rdata in _records(data, start):
            if rtype == 1:
                try:
                    msgs[rid] = [env, body_of(rid, flags, rdata)]
                except FileNotFoundError:
                    pass
            elif rtype == 2 and rid in msgs:
                msgs[rid][0] = env
            elif rtype == 3:
                msgs.pop(rid, None)

    for path in glob.glob(os.path.join(spool, "incoming", "*")):
        replay(path, 0)
    for path in sorted(glob.glob(os.path.join(spool, "log", "*"))):
        replay(path, 32)
    return msgs


def spool_messages(spool):
    """Every committed message as (envelope dict, body bytes), by id."""
    out = [(parse_envelope(env), body)
           for env, body in spool_raw(spool).values()]
    out.sort(key=lambda m: m[0]["id"])
    return out


def smtp_chat(port, commands, host="127.0.0.1"):
    """Sends each command after the previous reply; returns the replies
    (multi-line ones joined by newlines), the greeting first."""
    replies = []
    with socket.create_connection((host, port), timeout=10) as s:
        f = s.makefile("rwb")

        def reply():
            lines = []
            while True:
                line = f.readline()
                if not line:
                    break
                lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
                if len(line) < 4 or line[3:4] != b"-":
                    break
            return "\n".join(lines)

        replies.append(reply())
        for c in commands:
            f.write(c.encode() + b"\r\n")
            f.flush()
            replies.append(reply())
    return replies


def send_raw(port, sender, rcpts, body, helo="me.test"):
    """One message over a plain socket, each command after its reply;
    returns the reply to the end of data."""
    cmds = ["HELO " + helo, "MAIL FROM:<%s>" % sender]
    cmds += ["RCPT TO:<%s>" % r for r in rcpts]
    cmds += ["DATA"]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        f = s.makefile("rwb")
        f.readline()
        for c in cmds:
            f.write(c.encode() + b"\r\n")
            f.flush()
            reply = f.readline()
            assert reply[:1] in (b"2", b"3"), (c, reply)
        f.write(body + b".\r\n")
        f.flush()
        reply = f.readline().decode()
        f.write(b"QUIT\r\n")
        f.flush()
        return reply


def read_until(f, prefix):
    """Reads reply lines until one starts with 'prefix' (bytes); an EOF
    first is a failure, not an endless loop."""
    while True:
        line = f.readline()
        assert line, "connection closed before a %r reply" % prefix
        if line.startswith(prefix):
            return line
