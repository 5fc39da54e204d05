#!/usr/bin/python3
"""Start-up benchmark (issue #6): how long posternd takes to start on a
spool of 100,000 queued messages, and how much memory it then holds.

The spool is written directly, file by file, in the format of doc/spool.md
(format 1, envelope record version 1), without going through SMTP: that
takes seconds instead of minutes.  The generator is checked first on a
small spool with `postern queue list --json`, which decodes every envelope
(and its end line's FNV-1a checksum) the way the daemon does.

Each run starts `posternd -f` on that spool with its one upstream on a
127.0.0.1 port nobody listens on, so nothing is delivered (the first few
attempts fail and open the breaker), and measures: the time from exec to
the "event=ready" log line, the "event=queue-loaded ... ms=" figure, the
RSS right after ready and again 10 s later.  Runs alternate between a cold
cache (sync, then echo 3 > /proc/sys/vm/drop_caches; needs root) and a
warm one.

The figures are printed; nothing is asserted.  Exit status: 0 when every
run loaded every message and kept it, 1 otherwise, 2 when something it
needs is missing.
"""

import argparse
import calendar
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from common import (SLOW_CREATE_US, BenchError, PosterndInstance,
                    build_type, cpu_ticks, create_probe, disk_info,
                    free_port, mib, on_signal, proc_status,
                    spool_sizes, spread_dirs, TICK,
                    wait_for_fast_create)

TARGET_READY_S = {"cold": 2.0, "warm": 0.5}
TARGET_RSS_MIB = 64

READY_TIMEOUT = 300
SETTLED_AFTER = 10.0

BUCKETS = 16
FNV_OFFSET = 0xcbf29ce484222325
FNV_PRIME = 0x100000001b3
MASK64 = (1 << 64) - 1

SENDER = "cron@app.example.org"
RECIPIENT = "ops@example.org"

UPSTREAM_DOWN = """\
upstreams = ( {{ host = "127.0.0.1"; port = {port}; security = "none"; }} );
"""

LOG_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z")
QUEUE_LOADED = re.compile(r"event=queue-loaded messages=(\d+) held=(\d+) "
                          r"ms=(\d+)")


def fnv1a(data, h=FNV_OFFSET):
    """FNV-1a 64 of 'data', continuing from state 'h'."""
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK64
    return h


class SpoolWriter:
    """Writes committed messages straight into a spool directory, as
    posternd would leave them: SPOOL/format, tmp/, quarantine/,
    queue/0..f/ID.body and ID.env, directories 0700, files 0600."""

    def __init__(self, spool, size):
        self.spool = spool
        os.mkdir(spool, 0o700)
        for d in ("tmp", "quarantine", "queue"):
            os.mkdir(os.path.join(spool, d), 0o700)
        for b in range(BUCKETS):
            os.mkdir(os.path.join(spool, "queue", "%x" % b), 0o700)
        self._write(os.path.join(spool, "format"), b"postern-spool 1\n")
        self.size = size
        self.body = self._body(size)
        # Every id is distinct: one millisecond apart, older than now.
        self.ms = int(time.time() * 1000) - 10_000_000
        self.rng = random.Random(6)
        # The envelope's first line is the same for every message: its
        # hash state is computed once.
        self.head = b"postern-envelope 1\nid "
        self.head_h = fnv1a(self.head)

    def _body(self, size):
        """A message of exactly 'size' bytes, CRLF lines as the daemon
        stores them (Received: line on top)."""
        head = ("Received: from bench.example.org ([127.0.0.1])\r\n"
                "\tby bench.example.org (postern) with ESMTP\r\n"
                "From: %s\r\nTo: %s\r\nSubject: start-up benchmark\r\n\r\n"
                % (SENDER, RECIPIENT)).encode()
        line = b"x" * 70 + b"\r\n"
        body = bytearray(head)
        while len(body) < size:
            body += line
        return bytes(body[:max(size - 2, 0)]) + b"\r\n"

    @staticmethod
    def _write(path, data):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def add(self):
        """Writes one message; returns its id."""
        self.ms += 1
        mid = "%016x" % ((self.ms << 20) | self.rng.getrandbits(20))
        rest = ("%s\narrival %d\nsize %d\norigin smtp [127.0.0.1]:%d\n"
                "body 7bit\nsmtputf8 no\nsender %s\nattempts 0\n"
                "next-attempt 0\nheld no\nrcpt %s\nrcpt.state pending\n"
                % (mid, self.ms // 1000, len(self.body),
                   40000 + self.ms % 20000, SENDER, RECIPIENT)).encode()
        n = len(self.head) + len(rest)
        env = self.head + rest + b"end %d %016x\n" % (
            n, fnv1a(rest, self.head_h))
        bucket = os.path.join(self.spool, "queue", mid[-1])
        self._write(os.path.join(bucket, mid + ".body"), self.body)
        self._write(os.path.join(bucket, mid + ".env"), env)
        return mid


class Daemon(PosterndInstance):
    """posternd on a spool written beforehand, its upstream down."""

    def __init__(self, build_dir, parent, spool):
        super().__init__(build_dir, parent, UPSTREAM_DOWN.format(
            port=free_port()), level="info", spool=spool)

    def log_lines(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read().splitlines()


def log_time(line):
    """Seconds since 1970 of a log line's UTC time stamp, or None."""
    m = LOG_STAMP.match(line)
    if not m:
        return None
    t = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    return t + int(m.group(2)) / 1000.0


def take_over(args, parent, spool):
    """The generator writes spool format 1, as the previous postern did;
    posternd's first start moves it into the log (doc/spool.md).  Starts
    posternd once on 'spool' and stops it when ready; returns the seconds
    from exec to ready."""
    d = Daemon(args.build_dir, parent, spool)
    t0 = time.monotonic()
    d.proc = subprocess.Popen([d.binary, "-f", "-c", d.conf],
                              stdin=subprocess.DEVNULL, stdout=d.log,
                              stderr=d.log)
    deadline = t0 + READY_TIMEOUT
    try:
        while not any("event=ready" in x for x in d.log_lines()):
            if d.proc.poll() is not None:
                raise BenchError("posternd exited %d taking the spool over;"
                                 " log:\n%s" % (d.proc.returncode,
                                                 d.log_text()))
            if time.monotonic() > deadline:
                raise BenchError("posternd not ready after %d s"
                                 % READY_TIMEOUT)
            time.sleep(0.01)
        return time.monotonic() - t0
    finally:
        d.stop()


def check_generator(args):
    """Writes a small spool and has `postern queue list --json` decode
    it; raises unless every message comes back as written."""
    top = tempfile.mkdtemp(prefix="gen-check-", dir=args.top)
    spool = os.path.join(top, "spool")
    w = SpoolWriter(spool, args.size)
    ids = sorted(w.add() for _ in range(20))
    conf = os.path.join(top, "postern.conf")
    with open(conf, "w") as f:
        f.write('hostname = "bench.example.org";\nspool_dir = "%s";\n'
                % spool)
    take_over(args, top, spool)
    tool = os.path.join(args.build_dir, "daemon", "postern")
    r = subprocess.run([tool, "queue", "-c", conf, "--json", "list"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise BenchError("postern queue list refused the generated spool: "
                         "%s%s" % (r.stdout[-2000:], r.stderr[-2000:]))
    try:
        got = json.loads(r.stdout)
    except ValueError as e:
        raise BenchError("postern queue list --json: %s" % e)
    seen = sorted(m.get("id") for m in got)
    sizes = {m.get("size") for m in got}
    if seen != ids or sizes != {len(w.body)} or r.stderr.strip():
        raise BenchError("postern queue list does not show the generated "
                         "messages as written: %s %s"
                         % (r.stdout[:1000], r.stderr[:1000]))
    r = subprocess.run([tool, "queue", "-c", conf, "list"],
                       capture_output=True, text=True, timeout=30)
    last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    shutil.rmtree(top)
    return last


def generate(args):
    spool = os.path.join(args.top, "spool")
    w = SpoolWriter(spool, args.size)
    t0 = time.monotonic()
    for _ in range(args.messages):
        w.add()
    t1 = time.monotonic()
    os.sync()
    return spool, t1 - t0, time.monotonic() - t1


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def count_envelopes(spool):
    return len(spool_sizes(spool))


def run_once(args, spool, cache, made):
    """One start of posternd on the spool: returns the run's figures."""
    if cache == "cold":
        drop_caches()
    d = Daemon(args.build_dir, args.top, spool)
    made.append(d)
    t0 = time.time()
    d.proc = subprocess.Popen([d.binary, "-f", "-c", d.conf],
                              stdin=subprocess.DEVNULL, stdout=d.log,
                              stderr=d.log)
    ready_line = None
    deadline = time.monotonic() + READY_TIMEOUT
    while ready_line is None:
        if d.proc.poll() is not None:
            raise BenchError("posternd exited %d while starting; log:\n%s"
                             % (d.proc.returncode, d.log_text()))
        if time.monotonic() > deadline:
            raise BenchError("posternd not ready after %d s"
                             % READY_TIMEOUT)
        for line in d.log_lines():
            if "event=ready" in line:
                ready_line = line
                break
        else:
            time.sleep(0.002)
    seen = time.time()
    pid = d.proc.pid
    rss_ready = proc_status(pid, "VmRSS")
    cpu_ready = cpu_ticks(pid)
    time.sleep(SETTLED_AFTER)
    rss_later = proc_status(pid, "VmRSS")
    hwm = proc_status(pid, "VmHWM")
    lines = d.log_lines()
    d.stop()
    stamp = log_time(ready_line)
    ready_s = stamp - t0 if stamp is not None else seen - t0
    loaded = None
    for line in lines:
        m = QUEUE_LOADED.search(line)
        if m:
            loaded = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    problems = []
    if loaded is None:
        problems.append("no event=queue-loaded line")
    elif loaded[0] != args.messages:
        problems.append("loaded %d messages, %d in the spool"
                        % (loaded[0], args.messages))
    recovered = [x for x in lines if "event=spool-recovery" in x]
    if recovered:
        problems.append("%d spool-recovery events: %s"
                        % (len(recovered), recovered[0]))
    left = count_envelopes(spool)
    if left != args.messages:
        problems.append("%d envelopes left, %d written" % (left,
                                                           args.messages))
    attempts = sum(1 for x in lines if "event=breaker-open" in x)
    return {"cache": cache, "ready_s": ready_s,
            "loaded_ms": loaded[2] if loaded else None,
            "cpu_s": cpu_ready / TICK, "rss_ready_kb": rss_ready,
            "rss_later_kb": rss_later, "hwm_kb": hwm, "breaker": attempts,
            "problems": problems}


def summary(results):
    ok = all(not r["problems"] for r in results)
    for cache in ("cold", "warm"):
        rs = [r for r in results if r["cache"] == cache]
        if not rs:
            continue
        ready = statistics.median(r["ready_s"] for r in rs)
        loaded = [r["loaded_ms"] for r in rs if r["loaded_ms"] is not None]
        print("  %s: ready after %.2f s median (runs: %s); queue loaded in "
              "%s ms; CPU to ready %.2f s  (target <= %.1f s: %s)"
              % (cache, ready, ", ".join("%.2f" % r["ready_s"] for r in rs),
                 "%.0f" % statistics.median(loaded) if loaded else "n/a",
                 statistics.median(r["cpu_s"] for r in rs),
                 TARGET_READY_S[cache],
                 "met" if ready <= TARGET_READY_S[cache] else "NOT met"))
    if results:
        worst = max(max(r["rss_ready_kb"] or 0, r["rss_later_kb"] or 0,
                        r["hwm_kb"] or 0) for r in results)
        print("  RSS right after ready %s, %d s later %s, peak (VmHWM) %s "
              "(largest of all runs; target <= %d MiB: %s)"
              % (mib(max(r["rss_ready_kb"] or 0 for r in results)),
                 SETTLED_AFTER,
                 mib(max(r["rss_later_kb"] or 0 for r in results)),
                 mib(max(r["hwm_kb"] or 0 for r in results)),
                 TARGET_RSS_MIB,
                 "met" if worst <= TARGET_RSS_MIB * 1024 else "NOT met"))
    print("  every run loaded and kept every message: %s"
          % ("yes" if ok else "NO"))
    return ok


def parse_args():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.
                                RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default=os.environ.get(
        "MESON_BUILD_ROOT", os.path.join(here, "..", "..", "build-bench")),
        help="meson build directory holding daemon/posternd")
    p.add_argument("--dir", default="/var/tmp",
                   help="parent of the temporary directory (a real disk, "
                   "not a tmpfs; default /var/tmp)")
    p.add_argument("--messages", type=int, default=100000,
                   help="messages in the spool (default 100000)")
    p.add_argument("--size", type=int, default=2048,
                   help="bytes per message body (default 2048; bodies "
                   "are listed at start-up, never read)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds of one cold and one warm start "
                   "(default 3)")
    p.add_argument("--no-cold", action="store_true",
                   help="warm starts only (no drop_caches)")
    p.add_argument("--settle", type=int, default=120, metavar="S",
                   help="wait up to S seconds at the start while file "
                   "creation is slow after a recent mass removal")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directory")
    a = p.parse_args()
    a.build_dir = os.path.abspath(a.build_dir)
    if not 1 <= a.messages <= 1000000:
        p.error("--messages: between 1 and 1000000")
    if not 64 <= a.size <= 1 << 20:
        p.error("--size: between 64 and 1048576")
    if not 1 <= a.rounds <= 100:
        p.error("--rounds: between 1 and 100")
    if not 0 <= a.settle <= 3600:
        p.error("--settle: between 0 and 3600")
    return a


def main():
    args = parse_args()
    missing = [os.path.join(args.build_dir, "daemon", x) for x in
               ("posternd", "postern") if not os.access(
                   os.path.join(args.build_dir, "daemon", x), os.X_OK)]
    if missing:
        print("bench-startup: cannot run, missing: %s (build first)"
              % ", ".join(missing), file=sys.stderr)
        return 2
    if os.geteuid() != 0 and not args.no_cold:
        print("bench-startup: not root: no cold-cache runs (drop_caches "
              "needs root)", file=sys.stderr)
        args.no_cold = True
    signal.signal(signal.SIGTERM, on_signal)
    disk, _ = disk_info(args.dir)

    print("postern start-up benchmark (issue #6)")
    print("  spool: %d messages of %d bytes, one recipient each, written "
          "directly in format 1, then taken over into format 2"
          % (args.messages, args.size))
    print("  disk: temporary directory under %s (%s)" % (args.dir, disk))
    print("  posternd: %s (buildtype %s), upstream 127.0.0.1 on a closed "
          "port (nothing is delivered), log.level info"
          % (os.path.join(args.build_dir, "daemon", "posternd"),
             build_type(args.build_dir)))
    print("  ready: exec to the event=ready line (its time stamp); loaded: "
          "the event=queue-loaded ms= figure;\n  RSS right after ready "
          "and %d s later" % SETTLED_AFTER, flush=True)

    results = []
    made = []
    failed = None
    args.top = tempfile.mkdtemp(prefix="bench-startup-", dir=args.dir)
    try:
        # The spool starts in a block group of its own, away from the
        # inodes other programs freed lately: 200,000 creations there
        # would otherwise each scan past them.
        if spread_dirs(args.top):
            print("  spool in a block group of its own (chattr +T on %s)"
                  % args.top, flush=True)
        probe = wait_for_fast_create(args.top, args.settle)
        last = check_generator(args)
        print("  generator checked: postern queue list decodes 20 "
              "generated messages (last line: %s)" % last, flush=True)
        probe = create_probe(args.top)
        spool, gen_s, sync_s = generate(args)
        print("  generated %d messages in %.1f s (%.0f files/s; creation "
              "cost before: %.0f us%s), sync %.1f s"
              % (args.messages, gen_s, 2 * args.messages / gen_s, probe,
                 ", SLOW" if probe > SLOW_CREATE_US else "", sync_s),
              flush=True)
        print("  taken over into spool format 2 by posternd's first start: "
              "ready after %.2f s" % take_over(args, args.top, spool),
              flush=True)
        order = ["warm"] if args.no_cold else ["cold", "warm"]
        for i in range(args.rounds):
            for cache in order:
                r = run_once(args, spool, cache, made)
                results.append(r)
                status = "ok" if not r["problems"] else \
                    "PROBLEM: " + "; ".join(r["problems"])
                print("  round %d %s: ready %.2f s, queue loaded %s ms, "
                      "CPU %.2f s; RSS at ready %s, +%d s %s, peak %s; "
                      "breaker opened %dx | %s"
                      % (i + 1, cache, r["ready_s"],
                         r["loaded_ms"] if r["loaded_ms"] is not None
                         else "n/a", r["cpu_s"], mib(r["rss_ready_kb"]),
                         SETTLED_AFTER, mib(r["rss_later_kb"]),
                         mib(r["hwm_kb"]), r["breaker"], status),
                      flush=True)
    except BenchError as e:
        failed = str(e)
    except KeyboardInterrupt:
        failed = "interrupted"
    finally:
        for d in made:
            d.stop()
        if args.keep:
            print("  kept %s" % args.top)
        else:
            shutil.rmtree(args.top, ignore_errors=True)
            os.sync()

    print("summary")
    ok = summary(results) if results else False
    if failed:
        print("bench-startup: stopped: %s" % failed, file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
