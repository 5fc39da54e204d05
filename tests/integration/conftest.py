"""Shared fixtures: where the programs are, free ports, a running posternd."""

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
