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
import pwd
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SMTP_SOURCE = "/usr/sbin/smtp-source"
POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"

SENDER = "from@example.org"
RECIPIENT = "to@example.org"

TARGET_RATIO = 3.0
TARGET_RSS_MIB = 32

# Bounds on every wait, so that a hung peer ends the run instead of it.
START_TIMEOUT = 30
LOAD_TIMEOUT = 600
SETTLE_TIMEOUT = 120
STOP_TIMEOUT = 20

# Postfix's queues that hold messages (not logs or sockets).
POSTFIX_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")

# ext4 without a journal (this project's VMs) will not reuse an inode freed
# less than 60 s ago (360 s while its inode table block is dirty): each
# file creation then scans past every recently freed inode of the group,
# under the parent directory's lock (fs/ext4/ialloc.c, recently_deleted()).
# Removing one run's 20,000 files would slow the next run's creations
# tenfold or more, so nothing is removed before the last run, a probe of
# the creation cost goes with every run, and the first run waits (up to
# --settle seconds) for the cost to come down after an earlier removal.
PROBE_FILES = 500
SLOW_CREATE_US = 100

TICK = os.sysconf("SC_CLK_TCK")

# Percent of one CPU used by programs other than the server and the load
# generator during a run, above which its figures are flagged.
BUSY_OTHERS = 15

MASTER_CF = """\
# Private instance for the acceptance benchmark: no chroot, smtpd on
# loopback only, the services that accepting and queueing need.
127.0.0.1:{port} inet n - n - - smtpd
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
myhostname = bench.example.org
mydomain = example.org
myorigin = $myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Nothing leaves: the relay is a port nobody listens on, and the smtp
# transport is deferred without even trying it.
relayhost = [127.0.0.1]:1
alias_maps =
alias_database =
local_recipient_maps =
biff = no
# In Postfix's favour: no pause when mail arrives faster than it leaves,
# no reverse DNS lookup of the client, no per-client limits.
in_flow_delay = 0s
smtpd_peername_lookup = no
default_process_limit = 100
smtpd_client_connection_count_limit = 1000
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_event_limit_exceptions = 127.0.0.0/8
"""

MAIN_CF_DEFER = """\
defer_transports = smtp
"""

MAIN_CF_HOLD = """\
defer_transports = smtp
smtpd_data_restrictions = check_client_access static:HOLD
"""

POSTERND_CONF = """\
hostname = "bench.example.org";
spool_dir = "{spool}";
listen = ( "127.0.0.1:{port}" );
log = {{ level = "warn"; }};
"""


class BenchError(Exception):
    """A peer failed to start, stop or keep its mail."""


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, alive, timeout=START_TIMEOUT):
    """Waits until 127.0.0.1:port accepts; alive() false means give up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise BenchError("the server exited while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), 1):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError("nothing listens on 127.0.0.1:%d after %d s"
                     % (port, timeout))


def proc_status(pid, key):
    """A kB field of /proc/PID/status (VmHWM, VmRSS), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_pss(pid):
    """Proportional set size in kB (shared pages divided among users)."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_start(pid):
    """(ppid, comm, start time) of a process, or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    # comm is in parentheses and may hold spaces; the rest follows it:
    # rest[0] is field 3 of proc(5).
    rest = stat[stat.rindex(")") + 2:].split()
    return int(rest[1]), stat[stat.index("(") + 1:stat.rindex(")")], \
        int(rest[19])


def children(ppid):
    """(pid, comm, start time) of the live children of ppid."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_start(int(name))
            if st is not None and st[0] == ppid:
                out.append((int(name), st[1], st[2]))
    return out


def disk_info(path):
    """File system type of path (and whether an ext4 has a journal), and
    the name of its block device in /sys/class/block, or None."""
    path = os.path.realpath(path)
    best = ("", "unknown", "")
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, right = line.split(" - ", 1)
                mnt = left.split()[4]
                fstype, source = right.split()[:2]
                inside = path == mnt or path.startswith(
                    mnt.rstrip("/") + "/")
                if inside and len(mnt) >= len(best[0]):
                    best = (mnt, fstype, source)
    except (OSError, ValueError, IndexError):
        pass
    _, fstype, source = best
    dev = os.path.basename(source)
    if not os.path.exists("/sys/class/block/%s/stat" % dev):
        dev = None
    if fstype == "ext4" and dev is not None:
        try:
            journal = any(j.startswith(dev + "-")
                          for j in os.listdir("/proc/fs/jbd2"))
        except OSError:
            journal = False
        fstype += " with a journal" if journal else ", no journal"
    return fstype, dev


def block_stat(dev):
    """(write requests, flush requests) the device completed so far."""
    if dev is None:
        return None
    try:
        with open("/sys/class/block/%s/stat" % dev) as f:
            v = [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return None
    # Documentation/block/stat.rst: field 5 writes, field 16 flushes.
    return v[4], v[15] if len(v) > 15 else 0


def busy_ticks():
    """Clock ticks all CPUs spent running programs so far (user, nice and
    system time), less the kernel's own threads: block I/O completions and
    writeback there are the servers' work, not another program's."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:4]]
    kernel = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_start(int(name))
            if st is not None and (st[0] == 2 or name == "2"):
                kernel += cpu_ticks(int(name))
    return sum(v) - kernel


def cpu_ticks(pid, reaped=False):
    """User and system clock ticks of a process (all its threads), with
    those of its children it has waited for when reaped is true."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    # Fields 14-17 of proc(5): utime, stime, cutime, cstime.
    t = int(rest[11]) + int(rest[12])
    if reaped:
        t += int(rest[13]) + int(rest[14])
    return t


def smtp_source(port, sessions, messages, size, timeout=LOAD_TIMEOUT):
    """Runs the load; returns seconds taken.  Raises on a failed run."""
    cmd = [SMTP_SOURCE, "-c", "-s", str(sessions), "-m", str(messages),
           "-l", str(size), "-f", SENDER, "-t", RECIPIENT,
           "127.0.0.1:%d" % port]
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError("smtp-source did not finish in %d s" % timeout)
    elapsed = time.monotonic() - t0
    if r.returncode != 0 or r.stderr.strip():
        raise BenchError("smtp-source exited %d: %s"
                         % (r.returncode, r.stderr.strip()[-2000:]))
    return elapsed


class Posternd:
    """posternd in the foreground with a fresh spool."""

    name = "posternd"

    def __init__(self, build_dir, parent):
        self.binary = os.path.join(build_dir, "daemon", "posternd")
        self.top = tempfile.mkdtemp(prefix="posternd-", dir=parent)
        self.spool = os.path.join(self.top, "spool")
        self.port = free_port()
        self.conf = os.path.join(self.top, "posternd.conf")
        with open(self.conf, "w") as f:
            f.write(POSTERND_CONF.format(spool=self.spool, port=self.port))
        self.log = open(os.path.join(self.top, "posternd.log"), "w+")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "-f", "-c", self.conf],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        try:
            wait_port(self.port, lambda: self.proc.poll() is None)
        except BenchError as e:
            raise BenchError("posternd: %s; log:\n%s" % (e, self.log_text()))

    def log_text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def count(self, expected, size):
        """Messages in the queue; checks body sizes and a clean tmp/."""
        queue = os.path.join(self.spool, "queue")
        envs = bodies = short = 0
        for bucket in os.listdir(queue):
            with os.scandir(os.path.join(queue, bucket)) as it:
                for e in it:
                    if e.name.endswith(".env"):
                        envs += 1
                    elif e.name.endswith(".body"):
                        bodies += 1
                        if e.stat().st_size < size:
                            short += 1
        stray = len(os.listdir(os.path.join(self.spool, "tmp")))
        problems = []
        if envs != expected:
            problems.append("%d envelopes, expected %d" % (envs, expected))
        if bodies != envs:
            problems.append("%d bodies for %d envelopes" % (bodies, envs))
        if short:
            problems.append("%d bodies shorter than %d bytes" % (short,
                                                                  size))
        if stray:
            problems.append("%d files left in tmp/" % stray)
        return envs, problems

    def cpu(self):
        return cpu_ticks(self.proc.pid)

    def memory(self):
        pid = self.proc.pid
        return {"hwm_kb": proc_status(pid, "VmHWM"),
                "rss_kb": proc_status(pid, "VmRSS"),
                "pss_kb": proc_pss(pid)}

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Postfix:
    """A private Postfix instance in a temporary directory."""

    name = "postfix"

    def __init__(self, parent, queue_mode, log):
        self.top = tempfile.mkdtemp(prefix="postfix-", dir=parent)
        os.chmod(self.top, 0o711)
        self.etc = os.path.join(self.top, "etc")
        self.queue = os.path.join(self.top, "queue")
        self.data = os.path.join(self.top, "data")
        pw = pwd.getpwnam("postfix")
        os.mkdir(self.etc, 0o755)
        os.mkdir(self.queue, 0o755)
        os.mkdir(self.data, 0o700)
        os.chown(self.data, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        self.mode = queue_mode
        self.maillog = os.path.join(self.top, "maillog")
        main = MAIN_CF.format(queue=self.queue, data=self.data)
        main += MAIN_CF_HOLD if queue_mode == "hold" else MAIN_CF_DEFER
        if log:
            main += "maillog_file = %s\n" % self.maillog
            main += "maillog_file_prefixes = %s\n" % self.top
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(main)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(port=self.port))
        self.master = None

    def _postfix(self, *args, timeout=START_TIMEOUT):
        return subprocess.run([POSTFIX, "-c", self.etc, *args],
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)

    def _master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def start(self):
        # "check" creates the queue directories and fixes their owners.
        r = self._postfix("check")
        if r.returncode != 0:
            raise BenchError("postfix check failed: %s%s"
                             % (r.stdout, r.stderr))
        r = self._postfix("start")
        self.master = self._master_pid()
        if r.returncode != 0 or self.master is None:
            raise BenchError("postfix start failed (%d): %s%s (run with "
                             "--postfix-log --keep and read %s)"
                             % (r.returncode, r.stdout, r.stderr,
                                self.maillog))
        wait_port(self.port, self._alive)

    def _alive(self):
        return self.master is not None and os.path.exists(
            "/proc/%d" % self.master)

    def _count_queues(self):
        counts = {}
        for q in POSTFIX_QUEUES:
            n = 0
            for _, _, files in os.walk(os.path.join(self.queue, q)):
                n += len(files)
            counts[q] = n
        return counts

    def count(self, expected, size):
        """Messages in the queues, once the queue manager is done moving
        them (incoming and active empty in defer mode)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        last = None
        while True:
            c = self._count_queues()
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

    def cpu(self):
        """Ticks of the whole instance: the master with the children it
        reaped, and its live children."""
        if not self._alive():
            return 0
        return cpu_ticks(self.master, reaped=True) + sum(
            cpu_ticks(p) for p, _, _ in children(self.master))

    def memory(self):
        """Peak and proportional memory of smtpd and cleanup, and of the
        whole instance, from the processes alive now."""
        out = {"smtpd": 0, "cleanup": 0, "hwm_kb": 0, "pss_kb": 0,
               "all_pss_kb": 0, "all_hwm_kb": 0}
        if not self._alive():
            return out
        procs = [(self.master, "master", 0)] + children(self.master)
        for pid, comm, _ in procs:
            hwm = proc_status(pid, "VmHWM") or 0
            pss = proc_pss(pid) or 0
            out["all_hwm_kb"] += hwm
            out["all_pss_kb"] += pss
            if comm in ("smtpd", "cleanup"):
                out[comm] += 1
                out["hwm_kb"] += hwm
                out["pss_kb"] += pss
        return out

    def stop(self):
        if self.master is None:
            return
        mine = [(self.master, proc_start(self.master))] + \
            [(p, proc_start(p)) for p, _, _ in children(self.master)]
        self._postfix("stop", timeout=STOP_TIMEOUT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self._alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self._alive():
            self._postfix("abort", timeout=STOP_TIMEOUT)
            time.sleep(0.5)
        # What is left of this instance is killed by pid, when the pid
        # still names the same process (same start time).
        for pid, st in mine:
            now = proc_start(pid)
            if st is not None and now is not None and now[2] == st[2]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.master = None


def others_share(busy, server, load0, load1, elapsed):
    """Percent of one CPU that neither the server nor smtp-source used
    during the run: other work on the machine, which skews the figures."""
    load = (load1.ru_utime - load0.ru_utime) + (load1.ru_stime -
                                                 load0.ru_stime)
    other = busy / TICK - server / TICK - load
    return max(0.0, other / elapsed * 100.0)


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


def make_peer(kind, args):
    if kind == "posternd":
        return Posternd(args.build_dir, args.top)
    return Postfix(args.top, args.postfix_queue, args.postfix_log)


def create_probe(top, n=PROBE_FILES):
    """Microseconds to create one empty file in a new directory under top.
    The files stay until the end of the benchmark, like everything else:
    see SLOW_CREATE_US."""
    d = tempfile.mkdtemp(prefix="probe-", dir=top)
    t0 = time.perf_counter()
    for i in range(n):
        os.close(os.open(os.path.join(d, "p%d" % i),
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    return (time.perf_counter() - t0) / n * 1e6


def wait_for_fast_create(top, limit):
    """Waits (at most limit seconds) until files are quick to create
    again after a recent mass removal; returns the last probe."""
    deadline = time.monotonic() + limit
    # Clean inode table blocks shorten the wait from 360 s to 60 s.
    os.sync()
    us = create_probe(top)
    if us > SLOW_CREATE_US and limit > 0:
        print("  creating a file takes %.0f us (files were removed here "
              "lately); waiting up to %d s for it to drop below %d us"
              % (us, limit, SLOW_CREATE_US), flush=True)
        while us > SLOW_CREATE_US and time.monotonic() < deadline:
            time.sleep(5)
            os.sync()
            us = create_probe(top)
        print("  now %.0f us" % us, flush=True)
    return us


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


def mib(kb):
    return "%.1f MiB" % (kb / 1024.0) if kb is not None else "n/a"


def build_type(build_dir):
    try:
        with open(os.path.join(build_dir, "meson-info",
                               "intro-buildoptions.json")) as f:
            for o in json.load(f):
                if o["name"] == "buildtype":
                    return o["value"]
    except (OSError, ValueError, KeyError):
        pass
    return "unknown"


def postfix_version():
    r = subprocess.run([POSTCONF, "-d", "-h", "mail_version"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


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
                 "single", "settle"):
        v = getattr(a, name)
        if v < 0 or v > 1000000 or (v == 0 and name in
                                     ("messages", "sessions", "size",
                                      "rounds")):
            p.error("--%s out of range" % name)
    return a


def check_tools(args):
    missing = []
    if not os.access(SMTP_SOURCE, os.X_OK):
        missing.append("%s (package postfix)" % SMTP_SOURCE)
    if "posternd" in args.peers and not os.access(
            os.path.join(args.build_dir, "daemon", "posternd"), os.X_OK):
        missing.append("posternd in %s (build it first)" % args.build_dir)
    if "postfix" in args.peers:
        if not os.access(POSTFIX, os.X_OK):
            missing.append("%s (package postfix)" % POSTFIX)
        if os.geteuid() != 0:
            missing.append("root (Postfix's master needs it)")
        try:
            pwd.getpwnam("postfix")
        except KeyError:
            missing.append("the postfix user")
    return missing


def on_signal(sig, frame):
    raise KeyboardInterrupt


def main():
    args = parse_args()
    missing = check_tools(args)
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
          "is fsynced (posternd: body, envelope and queue directory; "
          "Postfix cleanup: the queue file, its default)")
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
