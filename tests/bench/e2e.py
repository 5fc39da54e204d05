#!/usr/bin/python3
"""End-to-end benchmark (issue #6): how fast mail goes through posternd to
an upstream, next to Postfix as a null client relaying to the same kind of
upstream, and next to no relay at all, on the same machine, in one run.

Path: smtp-source -> relay -> smtp-sink, all on 127.0.0.1.  smtp-sink
(Postfix's test server) takes every message and throws it away, counting
them (-c).  The time of a run goes from the first message sent until the
sink has received the last one.  The ceiling is smtp-source straight into
smtp-sink.  Loads: 10,000 messages of 4 KiB and of 100 KiB over 20
connections, after a warm-up of 500 that is not timed; the relays take
turns going first, each starts fresh in a new directory on the real disk.

After each run: the sink must have received exactly what was sent (no
loss, no duplicate) and the relay's queue must be empty.

Needs root (Postfix's master), the postfix package (smtp-source,
smtp-sink, postfix) and a built posternd.  The figures are printed;
nothing is asserted.  Exit status: 0 when every run delivered every
message exactly once, 1 otherwise, 2 when something it needs is missing.
"""

import argparse
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from common import (missing_tools, BUSY_OTHERS, SLOW_CREATE_US, SMTP_SINK,
                    SMTP_SOURCE, TICK, BenchError,
                    PostfixInstance, PosterndInstance, block_stat,
                    build_type, busy_ticks, cpu_ticks, create_probe,
                    disk_info, free_port, mib, on_signal, others_share,
                    postfix_version, smtp_source, smtp_source_cmd,
                    spread_dirs, stop_process, wait_for_fast_create,
                    wait_port)

# Issue #11's targets by message size: times Postfix, share of the
# ceiling (the sink fed directly).  Sizes without one are measured only.
TARGETS = {4096: (4.0, 0.5), 102400: (3.0, 0.6)}
TARGET_FLUSHES = 0.25
TARGET_WRITES = 2.0
TARGET_RSS_MIB = 32
# The issue's figure for Postfix on this machine kind, 10k x 4 KiB x 20.
ISSUE_POSTFIX_RATE = 800

# A run that makes no progress this long (the sink's count and the
# relay's queue both standing still) is given up.
STALL_TIMEOUT = 30
# After the last message arrived: how long the queue may take to empty,
# and how long the sink is watched for late duplicates.
DRAIN_TIMEOUT = 60
DUPLICATE_WATCH = 1.0
POLL = 0.01

POSTERND_UPSTREAM = """\
upstreams = ( {{ host = "127.0.0.1"; port = {sink}; security = "none"; }} );
queue = {{ concurrency = {conc}; messages_per_connection = {mpc}; }};
"""

# A null client: nothing is delivered locally, everything goes to the
# relay host.  The concurrency settings are Postfix's defaults, written
# out: up to 20 connections to the sink, starting with 5; connections are
# cached and reused when mail backs up (smtp_connection_cache_on_demand).
MAIN_CF_RELAY = """\
relayhost = [127.0.0.1]:{sink}
default_destination_concurrency_limit = 20
initial_destination_concurrency = 5
smtp_connection_cache_on_demand = yes
smtp_tls_security_level = none
"""

SINK_COUNT = re.compile(rb"mesg=(\d+)")


class Sink:
    """smtp-sink on 127.0.0.1, counting the messages it receives (-c):
    it rewrites "sess=N quit=N mesg=N\\r" on its stdout after each."""

    def __init__(self, parent):
        self.top = tempfile.mkdtemp(prefix="sink-", dir=parent)
        self.port = free_port()
        self.out_path = os.path.join(self.top, "counts")
        self.out = open(self.out_path, "wb")
        self.err = open(os.path.join(self.top, "stderr"), "w+")
        self.proc = None

    def start(self):
        cmd = [SMTP_SINK, "-c"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        cmd += ["127.0.0.1:%d" % self.port, "1000"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.err)
        try:
            wait_port(self.port, lambda: self.proc.poll() is None)
        except BenchError as e:
            self.err.seek(0)
            raise BenchError("smtp-sink: %s: %s" % (e, self.err.read()))

    def count(self):
        """Messages received so far (the last complete counter line)."""
        with open(self.out_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256))
            records = f.read().split(b"\r")[:-1]
        for rec in reversed(records):
            m = SINK_COUNT.search(rec)
            if m:
                return int(m.group(1))
        return 0

    def cpu(self):
        return cpu_ticks(self.proc.pid)

    def stop(self):
        stop_process(self.proc)
        self.out.close()
        self.err.close()


class Relay(PosterndInstance):
    """posternd forwarding to the sink."""

    def __init__(self, build_dir, parent, sink_port, conc, mpc):
        super().__init__(build_dir, parent, POSTERND_UPSTREAM.format(
            sink=sink_port, conc=conc, mpc=mpc))
        self.conc = conc


class PostfixRelay(PostfixInstance):
    """Postfix as a null client forwarding to the sink."""

    def __init__(self, parent, sink_port, log):
        super().__init__(parent, MAIN_CF_RELAY.format(sink=sink_port), log)

    def queued(self):
        return sum(self.count_queues().values())


def wait_delivered(sink, peer, want, what):
    """Waits until the sink has 'want' messages and the peer's queue is
    empty; gives up when neither moves for STALL_TIMEOUT."""
    last = None
    moved = time.monotonic()
    while True:
        state = (sink.count(), peer.queued() if peer else 0)
        if state[0] >= want and state[1] == 0:
            return
        if state != last:
            last, moved = state, time.monotonic()
        elif time.monotonic() - moved > STALL_TIMEOUT:
            raise BenchError("%s: stuck at %d/%d messages at the sink, %d "
                             "files queued" % (what, state[0], want,
                                               state[1]))
        time.sleep(0.05)


def timed_load(sink, peer, port, args, size, base):
    """Sends the timed load and returns (seconds until the sink has it
    all, seconds smtp-source took)."""
    want = base + args.messages
    cmd = smtp_source_cmd(port, args.sessions, args.messages, size)
    errf = tempfile.TemporaryFile(mode="w+")
    t0 = time.monotonic()
    src = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=errf)
    t_src = t_end = None
    last, moved = -1, t0
    try:
        while t_end is None:
            now = time.monotonic()
            if t_src is None and src.poll() is not None:
                t_src = now - t0
                errf.seek(0)
                err = errf.read().strip()
                if src.returncode != 0 or err:
                    raise BenchError("smtp-source exited %d: %s"
                                     % (src.returncode, err[-2000:]))
            n = sink.count()
            if n >= want:
                t_end = now - t0
                break
            if n != last:
                last, moved = n, now
            elif t_src is not None and now - moved > STALL_TIMEOUT:
                raise BenchError("the sink stopped at %d of %d messages"
                                 % (n - base, args.messages))
            time.sleep(POLL)
        if src.wait(STALL_TIMEOUT) != 0:
            raise BenchError("smtp-source exited %d" % src.returncode)
        if t_src is None:
            t_src = time.monotonic() - t0
    except subprocess.TimeoutExpired:
        raise BenchError("smtp-source did not finish")
    finally:
        if src.poll() is None:
            src.kill()
            src.wait()
        errf.close()
    return t_end, t_src


def run_once(kind, args, size, conc, made):
    """One fresh sink and relay (none for the ceiling): warm-up, timed
    load, checks.  Returns the run's figures."""
    sink = Sink(args.top)
    made.append(sink)
    peer = None
    if kind == "posternd":
        peer = Relay(args.build_dir, args.top, sink.port, conc, args.mpc)
    elif kind == "postfix":
        peer = PostfixRelay(args.top, sink.port, args.postfix_log)
    if peer is not None:
        made.append(peer)
    os.sync()
    probe = create_probe(args.top)
    sink.start()
    if peer is not None:
        peer.start()
    port = peer.port if peer is not None else sink.port
    if args.warmup:
        smtp_source(port, args.sessions, args.warmup, size)
        wait_delivered(sink, peer, args.warmup, "warm-up")
    os.sync()
    cpu0 = peer.cpu() if peer else 0
    scpu0, io0 = sink.cpu(), block_stat(args.dev)
    busy0 = busy_ticks()
    load0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed, t_src = timed_load(sink, peer, port, args, size, args.warmup)
    busy1 = busy_ticks()
    load1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu1 = peer.cpu() if peer else 0
    scpu1, io1 = sink.cpu(), block_stat(args.dev)
    mem = peer.memory() if peer else None
    want = args.warmup + args.messages
    problems = []
    try:
        wait_delivered(sink, peer, want, "drain")
    except BenchError as e:
        problems.append(str(e))
    time.sleep(DUPLICATE_WATCH)
    got = sink.count()
    if got != want:
        problems.append("the sink received %d messages, %d were sent"
                        % (got, want))
    left = peer.queued() if peer else 0
    if left:
        problems.append("%d files left in the queue" % left)
    if peer is not None:
        peer.stop()
    sink.stop()
    n = args.messages
    return {"peer": kind, "size": size, "conc": conc, "seconds": elapsed,
            "rate": n / elapsed, "accept": n / t_src, "sink": got,
            "expected": want, "problems": problems, "mem": mem,
            "cpu_us": (cpu1 - cpu0) * 1e6 / TICK / n,
            "sink_us": (scpu1 - scpu0) * 1e6 / TICK / n,
            "others": others_share(busy1 - busy0,
                                   (cpu1 - cpu0) + (scpu1 - scpu0),
                                   load0, load1, elapsed),
            "writes": (io1[0] - io0[0]) / n if io0 else None,
            "flushes": (io1[1] - io0[1]) / n if io0 else None,
            "create_us": probe}


def size_name(size):
    return "%d KiB" % (size // 1024) if size % 1024 == 0 else "%d B" % size


def peer_name(kind, conc):
    return "posternd c%d" % conc if kind == "posternd" else kind


def measure(kind, args, size, conc, label, results, made):
    r = run_once(kind, args, size, conc, made)
    r["label"] = label
    results.append(r)
    status = "ok (%d/%d, queue empty)" % (r["sink"], r["expected"]) \
        if not r["problems"] else "LOST MAIL: " + "; ".join(r["problems"])
    io = "%5.1f writes %4.1f flushes" % (r["writes"], r["flushes"]) \
        if r["writes"] is not None else "disk n/a"
    print("  %-8s %-7s %-12s %6.2f s %6.0f msg/s (accepted %6.0f/s) | per "
          "msg: cpu %4.0f us, sink %3.0f us, %s | create %3.0f us, others "
          "%3.0f%% | %s"
          % (label, size_name(size), peer_name(kind, conc), r["seconds"],
             r["rate"], r["accept"], r["cpu_us"], r["sink_us"], io,
             r["create_us"], r["others"], status), flush=True)
    return r


def median_rate(runs):
    return statistics.median(r["rate"] for r in runs) if runs else None


def summary(results, args):
    ok = all(not r["problems"] for r in results)
    main = [r for r in results if r["label"].startswith("round")]
    for size in args.sizes:
        print("  %s x %d, %d connections:" % (size_name(size), args.messages,
                                             args.sessions))
        runs = {}
        for kind in ("ceiling", "posternd", "postfix"):
            rs = [r for r in main if r["size"] == size and
                  r["peer"] == kind and (kind != "posternd" or
                                         r["conc"] == args.concurrency)]
            if rs:
                runs[kind] = rs
        rate = {k: median_rate(v) for k, v in runs.items()}
        for kind, rs in runs.items():
            extra = ""
            if kind != "ceiling":
                extra = "; per message %.0f us of CPU" % statistics.median(
                    r["cpu_us"] for r in rs)
                if "ceiling" in rate:
                    extra += ", %.3f of the ceiling" % (rate[kind] /
                                                        rate["ceiling"])
            print("    %-12s median %6.0f msg/s (runs: %s)%s"
                  % (peer_name(kind, args.concurrency), rate[kind],
                     ", ".join("%.0f" % r["rate"] for r in rs), extra))
        sweep = sorted({r["conc"] for r in results
                        if r["peer"] == "posternd" and r["size"] == size})
        if len(sweep) > 1:
            print("    posternd by queue.concurrency: %s" % ", ".join(
                "%d: %.0f msg/s" % (c, median_rate(
                    [r for r in results if r["peer"] == "posternd" and
                     r["size"] == size and r["conc"] == c])) for c in sweep))
        want_ratio, want_share = TARGETS.get(size, (None, None))
        if "posternd" in rate and "postfix" in rate:
            ratio = rate["posternd"] / rate["postfix"]
            print("    ratio posternd/postfix: %.2f%s"
                  % (ratio, "" if want_ratio is None else
                     "  (target >= %.0f: %s)" % (want_ratio, "met" if
                                                 ratio >= want_ratio
                                                 else "NOT met")))
        if "posternd" in rate and "ceiling" in rate and want_share:
            share = rate["posternd"] / rate["ceiling"]
            print("    posternd share of the ceiling: %.2f  (target >= "
                  "%.1f: %s)" % (share, want_share, "met" if share >=
                                 want_share else "NOT met"))
        io = [r for r in runs.get("posternd", [])
              if r["writes"] is not None]
        if io:
            w = statistics.median(r["writes"] for r in io)
            f = statistics.median(r["flushes"] for r in io)
            print("    posternd per message, whole device: %.2f writes "
                  "(target <= %.0f: %s), %.2f flushes (target <= %.2f: %s)"
                  % (w, TARGET_WRITES, "met" if w <= TARGET_WRITES else
                     "NOT met", f, TARGET_FLUSHES, "met" if
                     f <= TARGET_FLUSHES else "NOT met"))
    pd = [r for r in results if r["peer"] == "posternd"]
    if pd:
        hwm = max(r["mem"]["hwm_kb"] or 0 for r in pd)
        print("  posternd peak RSS (VmHWM), every run: %s  (target <= %d "
              "MiB: %s)" % (mib(hwm), TARGET_RSS_MIB,
                            "met" if hwm <= TARGET_RSS_MIB * 1024
                            else "NOT met"))
    pf = [r for r in results if r["peer"] == "postfix"]
    if pf:
        m = max(pf, key=lambda r: r["mem"]["all_pss_kb"])["mem"]
        print("  postfix at the end of its largest run: smtpd x%d + cleanup "
              "x%d peak RSS summed %s, PSS %s; smtp x%d; whole instance PSS "
              "%s" % (m["smtpd"], m["cleanup"], mib(m["hwm_kb"]),
                      mib(m["pss_kb"]), m["smtp"], mib(m["all_pss_kb"])))
    slow = [r for r in results if r["create_us"] > SLOW_CREATE_US]
    if slow:
        print("  WARNING: creating a file took over %d us before %s: files "
              "were removed on this file system in the last minutes (ext4 "
              "without a journal scans past recently freed inodes); those "
              "figures are low" % (SLOW_CREATE_US, ", ".join(
                  "%s %s %s" % (r["label"], size_name(r["size"]),
                                peer_name(r["peer"], r["conc"]))
                  for r in slow)))
    busy = [r for r in results if r["others"] > BUSY_OTHERS]
    if busy:
        print("  WARNING: other programs used over %d%% of a CPU during %s:"
              " those figures are low; run on an idle machine"
              % (BUSY_OTHERS, ", ".join(
                  "%s %s %s" % (r["label"], size_name(r["size"]),
                                peer_name(r["peer"], r["conc"]))
                  for r in busy)))
    print("  every run delivered every message exactly once, queues empty: "
          "%s" % ("yes" if ok else "NO"))
    return ok


def int_list(text):
    try:
        return [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError("not a comma list of numbers: %r"
                                         % text)


def parse_args():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.
                                RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default=os.environ.get(
        "MESON_BUILD_ROOT", os.path.join(here, "..", "..", "build-bench")),
        help="meson build directory holding daemon/posternd")
    p.add_argument("--dir", default="/var/tmp",
                   help="parent of the temporary directories (a real "
                   "disk, not a tmpfs; default /var/tmp)")
    p.add_argument("--messages", type=int, default=10000,
                   help="messages timed in each run (default 10000)")
    p.add_argument("--warmup", type=int, default=500,
                   help="messages sent first and not timed (default 500)")
    p.add_argument("--sessions", type=int, default=20,
                   help="concurrent connections (smtp-source -s)")
    p.add_argument("--sizes", type=int_list, default=[4096, 102400],
                   help="comma list of message sizes in bytes "
                   "(default 4096,102400)")
    p.add_argument("--rounds", type=int, default=2,
                   help="rounds; each starts every peer afresh "
                   "(default 2)")
    p.add_argument("--concurrency", type=int, default=4,
                   help="posternd's queue.concurrency in the rounds "
                   "(default 4)")
    p.add_argument("--sweep", type=int_list, default=[8, 16],
                   help="other queue.concurrency values, one run each "
                   "after the rounds (default 8,16; '' to skip)")
    p.add_argument("--mpc", type=int, default=100,
                   help="posternd's queue.messages_per_connection "
                   "(default 100)")
    p.add_argument("--peers", default="posternd,postfix,ceiling",
                   help="comma list: posternd, postfix, ceiling")
    p.add_argument("--postfix-log", action="store_true",
                   help="Postfix logs to maillog in its directory "
                   "(costs it speed; for trouble)")
    p.add_argument("--settle", type=int, default=120, metavar="S",
                   help="wait up to S seconds at the start while file "
                   "creation is slow after a recent mass removal")
    p.add_argument("--no-spread", action="store_true",
                   help="no chattr +T on the temporary directory: runs' "
                   "directories stay next to each other")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directories")
    a = p.parse_args()
    a.build_dir = os.path.abspath(a.build_dir)
    a.peers = [x for x in a.peers.split(",") if x]
    for x in a.peers:
        if x not in ("posternd", "postfix", "ceiling"):
            p.error("unknown peer %r" % x)
    for name in ("messages", "warmup", "sessions", "rounds", "concurrency",
                 "mpc", "settle"):
        v = getattr(a, name)
        if v < 0 or v > 1000000 or (v == 0 and name not in
                                     ("warmup", "settle")):
            p.error("--%s out of range" % name)
    if not a.sizes or any(s < 1 or s > 10 << 20 for s in a.sizes):
        p.error("--sizes: each between 1 and 10 MiB")
    if any(c < 1 or c > 1000 for c in a.sweep):
        p.error("--sweep: each between 1 and 1000")
    a.sweep = [c for c in a.sweep if c != a.concurrency]
    return a


def main():
    args = parse_args()
    missing = missing_tools(args, (SMTP_SOURCE, SMTP_SINK))
    if missing:
        print("bench-e2e: cannot run, missing: " + "; ".join(missing),
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_signal)
    disk, args.dev = disk_info(args.dir)

    print("postern end-to-end benchmark (issue #6)")
    print("  path: smtp-source -c -s %d -m %d -l SIZE -> relay -> smtp-sink "
          "-c, all on 127.0.0.1; sizes %s; warm-up of %d not timed; %d "
          "round(s), relays alternate first"
          % (args.sessions, args.messages, ", ".join(
              size_name(s) for s in args.sizes), args.warmup, args.rounds))
    print("  time: from the first message sent until the sink counted the "
          "last; 'accepted' is the rate smtp-source saw")
    print("  disk: temporary directories under %s (%s)%s"
          % (args.dir, disk, "  WARNING: fsync costs nothing on tmpfs, "
             "the figures mean nothing" if disk == "tmpfs" else ""))
    if "posternd" in args.peers:
        print("  posternd: %s (buildtype %s), queue.concurrency %d%s, "
              "messages_per_connection %d"
              % (os.path.join(args.build_dir, "daemon", "posternd"),
                 build_type(args.build_dir), args.concurrency,
                 " (then %s, one run each)" % ", ".join(
                     str(c) for c in args.sweep) if args.sweep else "",
                 args.mpc))
    if "postfix" in args.peers:
        print("  postfix: %s, private instance, null client relaying to "
              "the sink, up to 20 connections" % postfix_version())
    print("  machine: %d CPUs, shared by load, relay and sink"
          % os.cpu_count())
    print("  per msg: CPU of the relay (all threads or processes) and of "
          "the sink, write and flush\n    requests the disk completed "
          "(whole device); create: cost of one file creation\n    just "
          "before the run; others: CPU other programs used meanwhile, in "
          "percent of one CPU", flush=True)

    results = []
    made = []
    failed = None
    args.top = tempfile.mkdtemp(prefix="bench-e2e-", dir=args.dir)
    # Postfix's daemons run as the postfix user and must get through.
    os.chmod(args.top, 0o711)
    # Each run's directory in a block group of its own: other programs'
    # removals (and the previous run's) do not slow its file creations.
    if not args.no_spread and spread_dirs(args.top):
        print("  each run's directory starts in a block group of its own "
              "(chattr +T on %s)" % args.top, flush=True)
    relays = [k for k in args.peers if k != "ceiling"]
    try:
        wait_for_fast_create(args.top, args.settle)
        for i in range(args.rounds):
            for size in args.sizes:
                order = list(relays)
                if i % 2 == 1:
                    order.reverse()
                if "ceiling" in args.peers:
                    order.append("ceiling")
                for kind in order:
                    measure(kind, args, size, args.concurrency,
                            "round %d" % (i + 1), results, made)
        if "posternd" in args.peers:
            for size in args.sizes:
                for conc in args.sweep:
                    measure("posternd", args, size, conc, "sweep", results,
                            made)
    except BenchError as e:
        failed = str(e)
    except KeyboardInterrupt:
        failed = "interrupted"
    finally:
        for obj in made:
            try:
                obj.stop()
            except Exception as e:
                print("  cleanup: %s" % e, file=sys.stderr)
        if args.keep:
            print("  kept %s" % args.top)
        else:
            shutil.rmtree(args.top, ignore_errors=True)
            # The next run on this file system then waits 60 s, not 360 s.
            os.sync()

    print("summary")
    ok = summary(results, args) if results else False
    if results and "postfix" in args.peers and 4096 in args.sizes:
        pf = [r["rate"] for r in results if r["peer"] == "postfix" and
              r["size"] == 4096 and r["label"].startswith("round")]
        if pf:
            print("  the issue's figure for Postfix here, 4 KiB: about %d "
                  "msg/s; this run: %.0f" % (ISSUE_POSTFIX_RATE,
                                              statistics.median(pf)))
    if failed:
        print("bench-e2e: stopped: %s" % failed, file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
