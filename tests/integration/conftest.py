"""Shared fixtures: where the programs are, free ports, a running posternd."""

import glob
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

BUILD = os.environ.get("POSTERN_BUILD_DIR", "build")
SOURCE = os.environ.get("POSTERN_SOURCE_ROOT", ".")
POSTERND = os.path.join(BUILD, "daemon", "posternd")
POSTERN = os.path.join(BUILD, "daemon", "postern")


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
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


def start_posternd(daemon_factory, tmp_path, conf_extra="", env=None):
    """Starts posternd on a free loopback port with its spool under
    tmp_path; returns the Daemon with .port, .spool and .conf set."""
    port = free_port()
    spool = str(tmp_path / "spool")
    conf = tmp_path / "postern.conf"
    conf.write_text('hostname = "localhost";\n'
                    'listen = ( "127.0.0.1:%d" );\n'
                    'spool_dir = "%s";\n%s' % (port, spool, conf_extra))
    d = daemon_factory(str(conf), env)
    d.port, d.spool, d.conf = port, spool, str(conf)
    d.wait_for("event=ready")
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
    env = {}
    with open(path) as f:
        lines = f.read().split("\n")
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


def spool_messages(spool):
    """Every committed message as (envelope dict, body bytes), by id."""
    out = []
    for envfile in sorted(glob.glob(os.path.join(spool, "queue", "*",
                                                 "*.env"))):
        env = read_envelope(envfile)
        with open(envfile[:-4] + ".body", "rb") as f:
            out.append((env, f.read()))
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
