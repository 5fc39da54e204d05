"""Shared parts of the benchmarks in tests/bench/: process and disk probes,
the load generator, and the two servers under test (posternd and a private
Postfix instance), each started fresh in its own temporary directory.

Nothing here asserts: the benchmarks print figures.  Every wait is bounded
so that a hung peer ends the run instead of hanging it, and everything
talks to 127.0.0.1 only.
"""

import asyncio
import json
import os
import pwd
import signal
import socket
import subprocess
import tempfile
import time

SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"

SENDER = "from@example.org"
RECIPIENT = "to@example.org"

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
# Removing many files slows the next creations tenfold or more, so the
# benchmarks probe the creation cost before each run and wait (up to a
# bound) for it to come down after an earlier removal.
PROBE_FILES = 500
SLOW_CREATE_US = 100

TICK = os.sysconf("SC_CLK_TCK")

# Percent of one CPU used by programs other than the server and the load
# generator during a run, above which its figures are flagged.
BUSY_OTHERS = 15

MASTER_CF = """\
# Private instance for a benchmark: no chroot, smtpd on loopback only,
# the services that accepting, queueing and relaying need.
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

# What every instance shares; each benchmark adds where the mail goes.
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


def others_share(busy, server, load0, load1, elapsed):
    """Percent of one CPU that neither the server nor the load generator
    (our children, reaped: load0 and load1 are getrusage(RUSAGE_CHILDREN)
    before and after) used during the run: other work on the machine,
    which skews the figures.  'busy' and 'server' are clock ticks."""
    load = (load1.ru_utime - load0.ru_utime) + (load1.ru_stime -
                                                 load0.ru_stime)
    other = busy / TICK - server / TICK - load
    return max(0.0, other / elapsed * 100.0)


def smtp_source_cmd(port, sessions, messages, size):
    return [SMTP_SOURCE, "-c", "-s", str(sessions), "-m", str(messages),
            "-l", str(size), "-f", SENDER, "-t", RECIPIENT,
            "127.0.0.1:%d" % port]


def smtp_source(port, sessions, messages, size, timeout=LOAD_TIMEOUT):
    """Runs the load; returns seconds taken.  Raises on a failed run."""
    cmd = smtp_source_cmd(port, sessions, messages, size)
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


async def _latency_session(port, count, body, out):
    """One session sending 'count' messages one after another; appends
    each message's seconds from the final dot to the 250."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply(want):
        while True:
            line = await reader.readline()
            if not line:
                raise BenchError("the server closed the connection")
            if line[3:4] != b"-":
                break
        if not line.startswith(want):
            raise BenchError("expected %s, got %r" % (want.decode(),
                                                      line.strip()))

    try:
        await reply(b"220")
        writer.write(b"EHLO bench.example.org\r\n")
        await reply(b"250")
        for _ in range(count):
            writer.write(b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                         % (SENDER.encode(), RECIPIENT.encode()))
            await reply(b"250")
            await reply(b"250")
            await reply(b"354")
            writer.write(body)
            await writer.drain()
            t0 = time.perf_counter()
            writer.write(b".\r\n")
            await reply(b"250")
            out.append(time.perf_counter() - t0)
        writer.write(b"QUIT\r\n")
        await reply(b"221")
    finally:
        writer.close()


def smtp_latency(port, sessions, messages, size, timeout=LOAD_TIMEOUT):
    """Sends 'messages' of about 'size' bytes over 'sessions' concurrent
    connections, each message waiting for the one before (no pipelining
    of DATA); returns the seconds from each final dot to its 250."""
    line = b"x" * 78 + b"\r\n"
    body = b"From: <%s>\r\nTo: <%s>\r\nSubject: latency\r\n\r\n" % (
        SENDER.encode(), RECIPIENT.encode())
    body += line * max(1, (size - len(body)) // len(line))
    out = []
    per = [messages // sessions + (1 if i < messages % sessions else 0)
           for i in range(sessions)]

    async def run():
        await asyncio.gather(*(_latency_session(port, n, body, out)
                               for n in per if n > 0))

    try:
        asyncio.run(asyncio.wait_for(run(), timeout))
    except asyncio.TimeoutError:
        raise BenchError("the latency run did not finish in %d s" % timeout)
    except OSError as e:
        raise BenchError("the latency run failed: %s" % e)
    return out


def percentile(values, pct):
    """The value below which 'pct' percent of 'values' lie (nearest
    rank)."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, int(round(pct / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def create_probe(top, n=PROBE_FILES):
    """Microseconds to create one empty file in a new directory under top.
    The files stay until the end of the benchmark: see SLOW_CREATE_US."""
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


def spread_dirs(path):
    """Marks 'path' as the top of a directory hierarchy for ext4's Orlov
    allocator (chattr +T): directories made in it then start in a block
    group of their own rather than next to their parent, away from the
    inodes other programs freed lately (see SLOW_CREATE_US).  Returns
    whether that worked; elsewhere it changes nothing."""
    try:
        r = subprocess.run(["chattr", "+T", path], capture_output=True,
                           timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


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


def on_signal(sig, frame):
    raise KeyboardInterrupt


def stop_process(proc, timeout=STOP_TIMEOUT):
    """SIGTERM to a child we started, SIGKILL if it lingers; reaps it."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def spool_sizes(spool):
    """{id: body length} of every message in a posternd spool (format 2,
    doc/spool.md): drops, then the log replayed.  Reads every segment:
    for counting after a run, not while one goes."""
    import struct
    sizes = {}

    def replay(path, off):
        with open(path, "rb") as f:
            data = f.read()
        while off + 32 <= len(data) and data[off:off + 4] == b"PSTR":
            rtype, flags = data[off + 4], data[off + 5]
            rid, env_len, data_len = struct.unpack_from("<QII", data, off + 8)
            end = off + 32 + env_len + data_len
            if rtype == 1:
                if flags & 1:
                    sizes[rid] = struct.unpack_from("<QQ", data, end - 16)[1]
                else:
                    sizes[rid] = data_len
            elif rtype == 3:
                sizes.pop(rid, None)
            off = (end + 7) & ~7

    for name in os.listdir(os.path.join(spool, "incoming")):
        replay(os.path.join(spool, "incoming", name), 0)
    for name in sorted(os.listdir(os.path.join(spool, "log"))):
        replay(os.path.join(spool, "log", name), 32)
    return sizes


class PosterndInstance:
    """posternd in the foreground with a fresh spool in a new directory
    under 'parent' (or on the spool directory given); 'extra' is appended
    to its configuration."""

    name = "posternd"

    CONF = """\
hostname = "bench.example.org";
spool_dir = "{spool}";
listen = ( "127.0.0.1:{port}" );
log = {{ level = "{level}"; }};
"""

    def __init__(self, build_dir, parent, extra="", level="warn",
                 spool=None):
        self.binary = os.path.join(build_dir, "daemon", "posternd")
        self.top = tempfile.mkdtemp(prefix="posternd-", dir=parent)
        self.spool = spool or os.path.join(self.top, "spool")
        self.port = free_port()
        self.conf = os.path.join(self.top, "posternd.conf")
        with open(self.conf, "w") as f:
            f.write(self.CONF.format(spool=self.spool, port=self.port,
                                     level=level) + extra)
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

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def queued(self):
        """Messages in the queue now (the daemon's own count, from its
        control socket: the spool is a log, not a file a message), plus
        files left in tmp/; None when the daemon does not answer."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(os.path.join(self.spool, "control"))
                s.sendall(b"status\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            total = json.loads(data)["queue"]["total"]
        except (OSError, ValueError, KeyError):
            return None
        return total + len(os.listdir(os.path.join(self.spool, "tmp")))

    def cpu(self):
        return cpu_ticks(self.proc.pid)

    def memory(self):
        pid = self.proc.pid
        return {"hwm_kb": proc_status(pid, "VmHWM"),
                "rss_kb": proc_status(pid, "VmRSS"),
                "pss_kb": proc_pss(pid)}

    def stop(self):
        stop_process(self.proc)
        self.log.close()


class PostfixInstance:
    """A private Postfix instance in a new directory under 'parent':
    MAIN_CF plus 'extra' as main.cf, MASTER_CF as master.cf.  Needs root
    and the postfix user."""

    name = "postfix"

    def __init__(self, parent, extra, log):
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
        self.maillog = os.path.join(self.top, "maillog")
        main = MAIN_CF.format(queue=self.queue, data=self.data) + extra
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

    def count_queues(self):
        """Files in each of POSTFIX_QUEUES now."""
        counts = {}
        for q in POSTFIX_QUEUES:
            n = 0
            for _, _, files in os.walk(os.path.join(self.queue, q)):
                n += len(files)
            counts[q] = n
        return counts

    def cpu(self):
        """Ticks of the whole instance: the master with the children it
        reaped, and its live children."""
        if not self._alive():
            return 0
        return cpu_ticks(self.master, reaped=True) + sum(
            cpu_ticks(p) for p, _, _ in children(self.master))

    def memory(self):
        """Peak and proportional memory of smtpd and cleanup (and smtp),
        and of the whole instance, from the processes alive now."""
        out = {"smtpd": 0, "cleanup": 0, "smtp": 0, "hwm_kb": 0,
               "pss_kb": 0, "all_pss_kb": 0, "all_hwm_kb": 0}
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
            elif comm == "smtp":
                out["smtp"] += 1
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


def missing_tools(args, tools):
    """What keeps a benchmark from running: the programs in 'tools', a
    built posternd, and for Postfix its binary, root and its user."""
    missing = ["%s (package postfix)" % t for t in tools
               if not os.access(t, os.X_OK)]
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
