#!/usr/bin/python3
"""commit_shapes.py: how many messages a second each way of making them
durable allows, on scratch copies of the spool's write pattern.

    tests/bench/commit_shapes.py [--dir DIR] [--messages N] [--size BYTES]
        [--sessions S[,S...]] [--shapes NAME[,NAME...]] [--loop ext4,xfs]

Nothing of postern runs here: each shape is the sequence of system calls
a spool would make, so that the shapes can be weighed before one is
built.  S sessions (threads) each commit messages one after another,
waiting for the acknowledgement as an SMTP client waits for 250, until N
messages are committed in all.  The shapes:

  files        today's spool: per message, on one of 4 workers, the body
               and the envelope written to tmp/ and each fsync()ed, the
               body renamed into queue/X, queue/X fsync()ed, the envelope
               renamed, queue/X fsync()ed: four flushes a message.
  files-group  the same files, written by the 4 workers without a flush;
               one committer takes every message that is ready, renames
               the bodies into queue/X, syncfs() (data and body names),
               renames the envelopes, syncfs() again, then acknowledges
               the batch: two flushes a batch.
  files-fsync  as files-group, but fdatasync() on each file and fsync()
               on each directory touched instead of syncfs().
  log          one writer appends each message (a record header, the
               envelope, the body) to a preallocated segment and calls
               fdatasync() once a batch: one flush a batch.

For each it prints messages a second, flushes and write requests a
message (from the block device's counters), and the time from handing a
message over to its acknowledgement (p50, p99).  --loop also runs every
shape on a file system of each type made in a loop-mounted image under
DIR (root only), next to DIR's own.
"""

import argparse
import ctypes
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

WORKERS = 4             # posternd's pool (POOL_THREADS)
BUCKETS = 16
SEGMENT_BYTES = 256 << 20
RECORD_HEADER = 32
ENVELOPE_BYTES = 300    # a typical envelope record
LOOP_IMAGE_BYTES = 4 << 30
RUN_TIMEOUT = 600       # seconds a shape may take at the most

libc = ctypes.CDLL(None, use_errno=True)


def syncfs(fd):
    if libc.syncfs(fd) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class Spool:
    """A scratch spool: tmp/ and queue/0..f/ under a fresh directory."""

    def __init__(self, top):
        self.path = tempfile.mkdtemp(prefix="shapes-", dir=top)
        self.tmp = os.path.join(self.path, "tmp")
        os.mkdir(self.tmp)
        self.buckets = []
        for i in range(BUCKETS):
            d = os.path.join(self.path, "queue", "%x" % i)
            os.makedirs(d)
            self.buckets.append(d)
        self.dirfd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        self.bucketfd = [os.open(d, os.O_RDONLY | os.O_DIRECTORY)
                         for d in self.buckets]
        os.sync()

    def close(self):
        os.close(self.dirfd)
        for fd in self.bucketfd:
            os.close(fd)
        shutil.rmtree(self.path, ignore_errors=True)


def write_file(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    except OSError:
        os.close(fd)
        raise
    return fd


def take_batch(ready):
    """Everything waiting in 'ready' (at least one item, waited for), as
    a group commit takes it; None when told to stop."""
    first = ready.get()
    if first is None:
        return None
    batch = [first]
    while True:
        try:
            more = ready.get_nowait()
        except queue.Empty:
            return batch
        if more is None:
            ready.put(None)     # the stop is for the next round
            return batch
        batch.append(more)


class Files:
    """Today's commit: four flushes, on a pool of workers."""

    name = "files"

    def __init__(self, spool):
        self.spool = spool
        self.batches = []
        self.jobs = queue.Queue()
        self.threads = [threading.Thread(target=self.worker, daemon=True)
                        for _ in range(WORKERS)]
        for t in self.threads:
            t.start()

    def worker(self):
        while True:
            job = self.jobs.get()
            if job is None:
                return
            self.commit_one(*job[:3])
            job[3].set()

    def commit_one(self, n, body, env):
        s = self.spool
        b, e = "%016x.body" % n, "%016x.env" % n
        bucket = n % BUCKETS
        bfd = write_file(os.path.join(s.tmp, b), body)
        os.fsync(bfd)
        efd = write_file(os.path.join(s.tmp, e), env)
        os.fsync(efd)
        os.rename(os.path.join(s.tmp, b), os.path.join(s.buckets[bucket], b))
        os.fsync(s.bucketfd[bucket])
        os.rename(os.path.join(s.tmp, e), os.path.join(s.buckets[bucket], e))
        os.fsync(s.bucketfd[bucket])
        os.close(bfd)
        os.close(efd)

    def submit(self, n, body, env):
        done = threading.Event()
        self.jobs.put((n, body, env, done))
        done.wait()

    def stop(self):
        for _ in self.threads:
            self.jobs.put(None)
        for t in self.threads:
            t.join()


class FilesGroup(Files):
    """The same files, made durable a batch at a time."""

    name = "files-group"

    def __init__(self, spool):
        self.ready = queue.Queue()
        super().__init__(spool)
        self.committer = threading.Thread(target=self.commit_loop,
                                          daemon=True)
        self.committer.start()

    def worker(self):
        while True:
            job = self.jobs.get()
            if job is None:
                return
            n, body, env, done = job
            s = self.spool
            b, e = "%016x.body" % n, "%016x.env" % n
            fds = (write_file(os.path.join(s.tmp, b), body),
                   write_file(os.path.join(s.tmp, e), env))
            self.ready.put((n, fds, done))

    def flush(self, batch, names):
        syncfs(self.spool.dirfd)

    def commit_loop(self):
        s = self.spool
        while True:
            batch = take_batch(self.ready)
            if batch is None:
                return
            for n, fds, done in batch:
                b = "%016x.body" % n
                os.rename(os.path.join(s.tmp, b),
                          os.path.join(s.buckets[n % BUCKETS], b))
            self.flush(batch, "body")
            for n, fds, done in batch:
                e = "%016x.env" % n
                os.rename(os.path.join(s.tmp, e),
                          os.path.join(s.buckets[n % BUCKETS], e))
            self.flush(batch, "env")
            for n, fds, done in batch:
                os.close(fds[0])
                os.close(fds[1])
                done.set()
            self.batches.append(len(batch))

    def stop(self):
        super().stop()
        self.ready.put(None)
        self.committer.join()


class FilesFsync(FilesGroup):
    """A batch made durable file by file, directory by directory."""

    name = "files-fsync"

    def flush(self, batch, names):
        if names == "body":
            for n, fds, done in batch:
                os.fdatasync(fds[0])
                os.fdatasync(fds[1])
        for bucket in sorted({n % BUCKETS for n, fds, done in batch}):
            os.fsync(self.spool.bucketfd[bucket])


class Log:
    """An append-only segment, one fdatasync() a batch."""

    name = "log"

    def __init__(self, spool):
        self.spool = spool
        path = os.path.join(spool.path, "segment")
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.posix_fallocate(self.fd, 0, SEGMENT_BYTES)
        os.fsync(self.fd)
        os.fsync(spool.dirfd)
        self.off = 0
        self.batches = []
        self.ready = queue.Queue()
        self.writer = threading.Thread(target=self.write_loop, daemon=True)
        self.writer.start()

    def write_loop(self):
        while True:
            batch = take_batch(self.ready)
            if batch is None:
                return
            bufs = []
            for n, body, env, done in batch:
                bufs += [n.to_bytes(8, "little") * (RECORD_HEADER // 8),
                         env, body]
            size = sum(len(b) for b in bufs)
            if self.off + size > SEGMENT_BYTES:
                self.off = 0    # scratch: a real log opens a new segment
            os.pwritev(self.fd, bufs, self.off)
            self.off += size
            os.fdatasync(self.fd)
            for n, body, env, done in batch:
                done.set()
            self.batches.append(len(batch))

    def submit(self, n, body, env):
        done = threading.Event()
        self.ready.put((n, body, env, done))
        done.wait()

    def stop(self):
        self.ready.put(None)
        self.writer.join()
        os.close(self.fd)


SHAPES = {c.name: c for c in (Files, FilesGroup, FilesFsync, Log)}


def run_shape(cls, top, dev, messages, size, sessions):
    spool = Spool(top)
    shape = cls(spool)
    body = (b"x" * 76 + b"\r\n") * (size // 78) + b"x" * (size % 78)
    env = b"e" * ENVELOPE_BYTES
    counter = iter(range(messages))
    lock = threading.Lock()
    latencies = []
    deadline = time.monotonic() + RUN_TIMEOUT

    def session():
        while time.monotonic() < deadline:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            t0 = time.monotonic()
            shape.submit(n, body, env)
            t1 = time.monotonic()
            with lock:
                latencies.append(t1 - t0)

    os.sync()
    before = common.block_stat(dev)
    t0 = time.monotonic()
    threads = [threading.Thread(target=session) for _ in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    after = common.block_stat(dev)
    shape.stop()
    spool.close()
    done = len(latencies)
    latencies.sort()
    row = {
        "rate": done / elapsed if elapsed > 0 else 0.0,
        "done": done,
        "p50": latencies[done // 2] * 1000 if done else 0.0,
        "p99": latencies[min(done - 1, done * 99 // 100)] * 1000
        if done else 0.0,
        "batch": (sum(shape.batches) / len(shape.batches)
                  if shape.batches else 1.0),
        "writes": None,
        "flushes": None,
    }
    if before is not None and after is not None and done:
        row["writes"] = (after[0] - before[0]) / done
        row["flushes"] = (after[1] - before[1]) / done
    return row


def per_msg(v):
    return "-" if v is None else "%.2f" % v


def run_all(label, top, args):
    fstype, dev = common.disk_info(top)
    print("\n%s: %s (%s), %d messages of %d bytes" %
          (label, top, fstype, args.messages, args.size))
    print("| shape | sessions | msg/s | flushes/msg | writes/msg | "
          "batch | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.shapes:
        for s in args.sessions:
            r = run_shape(SHAPES[name], top, dev, args.messages, args.size,
                          s)
            print("| %s | %d | %.0f | %s | %s | %.1f | %.2f | %.2f |" %
                  (name, s, r["rate"], per_msg(r["flushes"]),
                   per_msg(r["writes"]), r["batch"], r["p50"], r["p99"]))
            sys.stdout.flush()


def with_loop(fs, top, args):
    img = os.path.join(top, "shapes-%s.img" % fs)
    mnt = tempfile.mkdtemp(prefix="shapes-%s-" % fs, dir=top)
    mkfs = {"ext4": ["mkfs.ext4", "-q", "-F", img],
            "xfs": ["mkfs.xfs", "-q", "-f", img]}[fs]
    try:
        with open(img, "wb") as f:
            f.truncate(LOOP_IMAGE_BYTES)
        subprocess.run(mkfs, check=True)
        subprocess.run(["mount", "-o", "loop", img, mnt], check=True)
        try:
            run_all("%s in a loop-mounted image" % fs, mnt, args)
        finally:
            subprocess.run(["umount", mnt], check=False)
    finally:
        os.rmdir(mnt)
        os.unlink(img)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", default="/var/tmp",
                   help="where the scratch spools go (a real disk)")
    p.add_argument("--messages", type=int, default=4000)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--sessions", default="1,20")
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--loop", default="",
                   help="also on these file systems (ext4,xfs), as root")
    args = p.parse_args()
    args.sessions = [int(x) for x in args.sessions.split(",") if x]
    args.shapes = [x for x in args.shapes.split(",") if x]
    for name in args.shapes:
        if name not in SHAPES:
            p.error("unknown shape %s (%s)" % (name, ", ".join(SHAPES)))
    if args.messages < 1 or args.messages > 1000000:
        p.error("--messages: 1 to 1000000")
    run_all("plain disk", args.dir, args)
    for fs in [x for x in args.loop.split(",") if x]:
        if fs not in ("ext4", "xfs"):
            p.error("--loop: ext4 or xfs")
        with_loop(fs, args.dir, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
