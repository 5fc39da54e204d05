#!/usr/bin/python3
"""Acceptance benchmark (issue #3): how fast posternd takes mail, next to
Postfix's smtpd on the same machine, in the same run.

Load: Postfix's smtp-source, by default 10,000 messages of 4 KiB over 20
connections, after a warm-up of 500 that is not counted.  Each peer starts
fresh for each round (new temporary directory on the normal disk, never a
tmpfs), and the peers take turns going first.  Both answer 250 only after
the message is fsynced: posternd fsyncs body, envelope and queue directory
(doc/spool.md); Postfix's cleanup fsyncs the queue file (its default).

After every run the queue is counted: a run whose queue does not hold every
message it was sent is reported as failed, whatever its rate.

Postfix runs as a private instance: its own main.cf and master.cf in the
temporary directory, smtpd on 127.0.0.1 only, mail that waits in the queue
(relayhost on an unused port plus defer_transports = smtp, or the hold
queue with --postfix-queue hold).  Needs root and the postfix user (the
Debian package creates it).  Everything talks to 127.0.0.1 only.

The figures are printed; nothing is asserted.  Exit status: 0 when every
run delivered every message to its queue, 1 otherwise, 2 when a peer or a
tool is missing.
"""

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time

from common import (missing_tools, BUSY_OTHERS, RECIPIENT, SENDER,
                    SETTLE_TIMEOUT, SLOW_CREATE_US, SMTP_SOURCE, TICK,
                    BenchError, PostfixInstance, PosterndInstance,
                    block_stat, build_type, busy_ticks, create_probe,
                    disk_info, mib, on_signal, others_share, percentile,
                    postfix_version, smtp_latency, smtp_source, spool_sizes,
                    wait_for_fast_create)

TARGET_RATIO = 3.0
TARGET_RSS_MIB = 32

# Nothing leaves: the relay is a port nobody listens on, and the smtp
# transport is deferred without even trying it.
MAIN_CF_DEFER = """\
relayhost = [127.0.0.1]:1
defer_transports = smtp
"""

MAIN_CF_HOLD = """\
relayhost = [127.0.0.1]:1
defer_transports = smtp
smtpd_data_restrictions = check_client_access static:HOLD
"""


class Posternd(PosterndInstance):
    """posternd with no upstream: what it accepts stays in its queue."""

    def count(self, expected, size):
        """Messages in the queue; checks body sizes and a clean tmp/."""
        sizes = spool_sizes(self.spool)
        envs = len(sizes)
        short = sum(1 for n in sizes.values() if n < size)
        stray = len(os.listdir(os.path.join(self.spool, "tmp")))
        problems = []
        if envs != expected:
            problems.append("%d messages, expected %d" % (envs, expected))
        if short:
            problems.append("%d bodies shorter than %d bytes" % (short,
                                                                  size))
        if stray:
            problems.append("%d files left in tmp/" % stray)
        return envs, problems


class Postfix(PostfixInstance):
    """Postfix keeping what it accepts in its deferred or hold queue."""

    def __init__(self, parent, queue_mode, log):
        super().__init__(parent, MAIN_CF_HOLD if queue_mode == "hold"
                         else MAIN_CF_DEFER, log)
        self.mode = queue_mode

    def count(self, expected, size):
        """Messages in the queues, once the queue manager is done moving
        them (incoming and active empty in defer mode)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        last = None
        while True:
            c = self.count_queues()
            moving = c["maildrop"] + c["incoming"] + c["active"]
            total = sum(c.values())
            settled = (self.mode == "hold" or moving == 0) and \
                total == last
            if settled or time.monotonic() > deadline:
                break
            last = total
            time.sleep(0.2)
        problems = []
        if total != expected:
            problems.append("%d queue files, expected %d (%s)"
                            % (total, expected, json.dumps(c)))
        if not settled:
            problems.append("queue manager still moving mail after %d s"
                            % SETTLE_TIMEOUT)
        return total, problems


def run_once(peer, args, sessions, messages, warmup):
    """One fresh instance of a peer: warm-up, timed load, count, memory."""
    try:
        peer.start()
        if warmup:
            smtp_source(peer.port, sessions, warmup, args.size)
            os.sync()
        cpu0, io0 = peer.cpu(), block_stat(args.dev)
        busy0, load0 = busy_ticks(), resource.getrusage(
            resource.RUSAGE_CHILDREN)
        elapsed = smtp_source(peer.port, sessions, messages, args.size)
        busy1, load1 = busy_ticks(), resource.getrusage(
            resource.RUSAGE_CHILDREN)
        cpu1, io1 = peer.cpu(), block_stat(args.dev)
        mem = peer.memory()
        got, problems = peer.count(warmup + messages, args.size)
    finally:
        peer.stop()
    return {"peer": peer.name, "sessions": sessions, "messages": messages,
            "seconds": elapsed, "rate": messages / elapsed,
            "queued": got, "expected": warmup + messages,
            "problems": problems, "mem": mem,
            "cpu_us": (cpu1 - cpu0) * 1e6 / TICK / messages,
            "others": others_share(busy1 - busy0, cpu1 - cpu0,
                                   load0, load1, elapsed),
            "writes": (io1[0] - io0[0]) / messages if io0 else None,
            "flushes": (io1[1] - io0[1]) / messages if io0 else None}


def measure_latency(kind, args, sessions, messages, results, made):
    """Runs one fresh peer under the latency client: the time from each
    final dot to its 250, with 'sessions' sending at once."""
    peer = make_peer(kind, args)
    made.append(peer)
    os.sync()
    try:
        peer.start()
        warmup = min(args.warmup, messages // 10)
        if warmup:
            smtp_source(peer.port, sessions, warmup, args.size)
            os.sync()
        t0 = time.monotonic()
        lat = smtp_latency(peer.port, sessions, messages, args.size)
        elapsed = time.monotonic() - t0
        got, problems = peer.count(warmup + messages, args.size)
    finally:
        peer.stop()
    r = {"peer": kind, "label": "latency-%d" % sessions,
         "sessions": sessions, "messages": messages, "seconds": elapsed,
         "rate": messages / elapsed, "p50": percentile(lat, 50) * 1000,
         "p99": percentile(lat, 99) * 1000, "queued": got,
         "expected": warmup + messages, "problems": problems,
         "create_us": 0, "others": 0}
    results.append(r)
    status = "queue ok (%d/%d)" % (got, warmup + messages) \
        if not problems else "LOST MAIL: " + "; ".join(problems)
    print("  %-8s %-8s %2d conn %6d msgs %6.2f s %6.0f msg/s | final dot "
          "to 250: p50 %.2f ms, p99 %.2f ms | %s"
          % ("latency", kind, sessions, messages, elapsed, r["rate"],
             r["p50"], r["p99"], status), flush=True)
    return r


def make_peer(kind, args):
    if kind == "posternd":
        return Posternd(args.build_dir, args.top)
    return Postfix(args.top, args.postfix_queue, args.postfix_log)


def measure(kind, args, sessions, messages, warmup, label, results, made):
    """Runs one fresh peer and prints one line.  Its directory joins
    'made', to be stopped at the end; all is removed once every run is
    over."""
    peer = make_peer(kind, args)
    made.append(peer)
    # Earlier runs' dirty metadata goes to disk now, not during this run.
    os.sync()
    probe = create_probe(args.top)
    r = run_once(peer, args, sessions, messages, warmup)
    r["label"] = label
    r["create_us"] = probe
    results.append(r)
    status = "queue ok (%d/%d)" % (r["queued"], r["expected"]) \
        if not r["problems"] else "LOST MAIL: " + "; ".join(r["problems"])
    io = "%4.1f writes %3.1f flushes" % (r["writes"], r["flushes"]) \
        if r["writes"] is not None else "disk n/a"
    print("  %-8s %-8s %2d conn %6d msgs %6.2f s %6.0f msg/s | per msg: "
          "cpu %4.0f us, %s | create %3.0f us, others %3.0f%% | %s"
          % (label, kind, sessions, messages, r["seconds"], r["rate"],
             r["cpu_us"], io, probe, r["others"], status), flush=True)
    return r


def summary(results, args):
    ok = all(not r["problems"] for r in results)
    main = [r for r in results if r["label"].startswith("round")]
    rates = {}
    for kind in ("posternd", "postfix"):
        runs = [r for r in main if r["peer"] == kind]
        if not runs:
            continue
        rates[kind] = statistics.median(r["rate"] for r in runs)
        io = ""
        if all(r["writes"] is not None for r in runs):
            io = ", %.1f writes and %.1f flushes" % (
                statistics.median(r["writes"] for r in runs),
                statistics.median(r["flushes"] for r in runs))
        print("  %-8s median %6.0f msg/s (runs: %s); per message: "
              "%.0f us of CPU%s"
              % (kind, rates[kind],
                 ", ".join("%.0f" % r["rate"] for r in runs),
                 statistics.median(r["cpu_us"] for r in runs), io))
    if len(rates) == 2:
        ratio = rates["posternd"] / rates["postfix"]
        print("  ratio posternd/postfix: %.2f  (target >= %.1f: %s)"
              % (ratio, TARGET_RATIO,
                 "met" if ratio >= TARGET_RATIO else "NOT met"))
    pd = [r for r in main if r["peer"] == "posternd"]
    if pd:
        hwm = max(r["mem"]["hwm_kb"] or 0 for r in pd)
        print("  posternd peak RSS (VmHWM): %s, PSS after the run %s  "
              "(target < %d MiB: %s)"
              % (mib(hwm), mib(max(r["mem"]["pss_kb"] or 0 for r in pd)),
                 TARGET_RSS_MIB,
                 "met" if hwm < TARGET_RSS_MIB * 1024 else "NOT met"))
    pf = [r for r in main if r["peer"] == "postfix"]
    if pf:
        m = max(pf, key=lambda r: r["mem"]["hwm_kb"])["mem"]
        print("  postfix smtpd x%d + cleanup x%d: peak RSS summed %s, "
              "PSS %s; whole instance (%s): PSS %s"
              % (m["smtpd"], m["cleanup"], mib(m["hwm_kb"]),
                 mib(m["pss_kb"]), "master and its children",
                 mib(m["all_pss_kb"])))
    single = {r["peer"]: r for r in results if r["label"] == "1-conn"}
    for kind, r in sorted(single.items()):
        if kind in rates:
            print("  %s with 1 connection: %.0f msg/s; with %d: %.0f "
                  "msg/s (x%.1f from commits in parallel)"
                  % (kind, r["rate"], args.sessions, rates[kind],
                     rates[kind] / r["rate"]))
    lat = [r for r in results if r["label"].startswith("latency")]
    if lat:
        print("  final dot to 250 (the latency client, one message at a "
              "time per session):")
        for r in lat:
            print("    %-8s %2d session(s): p50 %.2f ms, p99 %.2f ms"
                  % (r["peer"], r["sessions"], r["p50"], r["p99"]))
    slow = [r for r in results if r["create_us"] > SLOW_CREATE_US]
    if slow:
        print("  WARNING: creating a file took over %d us before %s: many "
              "files were removed on this file system in the last "
              "minutes (ext4 without a journal does not reuse their "
              "inodes for 1-6 min and scans past them); those figures "
              "are low; run again later or use --dir elsewhere"
              % (SLOW_CREATE_US, ", ".join("%s %s" % (r["label"],
                                                      r["peer"])
                                           for r in slow)))
    busy = [r for r in results if r["others"] > BUSY_OTHERS]
    if busy:
        print("  WARNING: other programs used over %d%% of a CPU during %s:"
              " those figures are low; run on an idle machine"
              % (BUSY_OTHERS, ", ".join("%s %s" % (r["label"], r["peer"])
                                         for r in busy)))
    print("  every run kept every message: %s" % ("yes" if ok else "NO"))
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
                   help="parent of the temporary directories (a real "
                   "disk, not a tmpfs; default /var/tmp)")
    p.add_argument("--messages", type=int, default=10000,
                   help="messages timed in each round (default 10000)")
    p.add_argument("--warmup", type=int, default=500,
                   help="messages sent first and not timed (default 500)")
    p.add_argument("--sessions", type=int, default=20,
                   help="concurrent connections (smtp-source -s)")
    p.add_argument("--size", type=int, default=4096,
                   help="message size in bytes (smtp-source -l)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds; each starts every peer afresh")
    p.add_argument("--single", type=int, default=2000, metavar="N",
                   help="messages for the 1-connection runs (0: skip)")
    p.add_argument("--latency", type=int, default=2000, metavar="N",
                   help="messages for the latency runs, at 1 and at "
                   "--sessions connections (0: skip)")
    p.add_argument("--peers", default="posternd,postfix",
                   help="comma list: posternd, postfix")
    p.add_argument("--postfix-queue", choices=("defer", "hold"),
                   default="defer",
                   help="where Postfix keeps the mail: deferred queue "
                   "(queue manager and error agent work while mail "
                   "arrives) or hold queue (nothing moves)")
    p.add_argument("--postfix-log", action="store_true",
                   help="Postfix logs to maillog in its directory "
                   "(costs it speed; for trouble)")
    p.add_argument("--settle", type=int, default=120, metavar="S",
                   help="wait up to S seconds at the start while file "
                   "creation is slow after a recent mass removal")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directories")
    a = p.parse_args()
    a.build_dir = os.path.abspath(a.build_dir)
    a.peers = [x for x in a.peers.split(",") if x]
    for x in a.peers:
        if x not in ("posternd", "postfix"):
            p.error("unknown peer %r" % x)
    for name in ("messages", "warmup", "sessions", "size", "rounds",
                 "single", "latency", "settle"):
        v = getattr(a, name)
        if v < 0 or v > 1000000 or (v == 0 and name in
                                     ("messages", "sessions", "size",
                                      "rounds")):
            p.error("--%s out of range" % name)
    return a


def main():
    args = parse_args()
    missing = missing_tools(args, (SMTP_SOURCE,))
    if missing:
        print("bench-accept: cannot run, missing: " + "; ".join(missing),
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_signal)
    disk, args.dev = disk_info(args.dir)

    print("postern acceptance benchmark (issue #3)")
    print("  load: smtp-source -c -s %d -m %d -l %d -f %s -t %s, after a "
          "warm-up of %d not counted; %d round(s), peers alternate first"
          % (args.sessions, args.messages, args.size, SENDER, RECIPIENT,
             args.warmup, args.rounds))
    print("  disk: temporary directories under %s (%s)%s"
          % (args.dir, disk, "  WARNING: fsync costs nothing on tmpfs, "
             "the figures mean nothing" if disk == "tmpfs" else ""))
    print("  guarantee, same on both sides: 250 only after the message "
          "is on stable storage (posternd: its record in the log, the "
          "segment fdatasync()ed with its batch; Postfix cleanup: the "
          "queue file fsynced, its default)")
    if "posternd" in args.peers:
        print("  posternd: %s (buildtype %s)"
              % (os.path.join(args.build_dir, "daemon", "posternd"),
                 build_type(args.build_dir)))
    if "postfix" in args.peers:
        print("  postfix: %s, private instance, mail kept in the %s queue"
              % (postfix_version(), "hold" if args.postfix_queue == "hold"
                 else "deferred"))
    print("  machine: %d CPUs; server and load generator share them"
          % os.cpu_count())
    print("  per msg: CPU of the server (every thread or process), write "
          "and flush requests\n    the disk completed (whole device) "
          "during the timed run; create: cost of\n    one file creation "
          "just before the run; others: CPU used meanwhile by other\n"
          "    programs, in percent of one CPU", flush=True)

    results = []
    made = []
    failed = None
    args.top = tempfile.mkdtemp(prefix="bench-accept-", dir=args.dir)
    # Postfix's daemons run as the postfix user and must get through.
    os.chmod(args.top, 0o711)
    try:
        wait_for_fast_create(args.top, args.settle)
        for i in range(args.rounds):
            order = list(args.peers)
            if i % 2 == 1:
                order.reverse()
            for kind in order:
                measure(kind, args, args.sessions, args.messages,
                        args.warmup, "round %d" % (i + 1), results, made)
        if args.single:
            for kind in args.peers:
                measure(kind, args, 1, args.single,
                        min(args.warmup, args.single // 10), "1-conn",
                        results, made)
        if args.latency:
            for sessions in (1, args.sessions):
                for kind in args.peers:
                    measure_latency(kind, args, sessions, args.latency,
                                    results, made)
    except BenchError as e:
        failed = str(e)
    except KeyboardInterrupt:
        failed = "interrupted"
    finally:
        for peer in made:
            peer.stop()
        if args.keep:
            print("  kept %s" % args.top)
        else:
            shutil.rmtree(args.top, ignore_errors=True)
            # The next run on this file system then waits 60 s, not 360 s.
            os.sync()

    print("summary")
    ok = summary(results, args) if results else False
    if failed:
        print("bench-accept: stopped: %s" % failed, file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
