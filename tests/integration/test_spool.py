"""The spool under disk faults, injected by the test suite's LD_PRELOAD
library (tests/faultshim/faultshim.c says how rules are written), and the
spool's own housekeeping: damaged envelopes, unreadable files, free space
on small volumes.

Each rule names the files it hits by a pattern, so that replies, logs and
sockets are never touched; FAULTSHIM_LOG shows that the fault was met.
"""

import os
import socket
import subprocess
import time

import pytest

from conftest import BUILD, POSTERN, POSTERN_SENDMAIL, free_port, \
    send_raw, spool_messages, start_posternd

SHIM = os.path.join(BUILD, "tests", "faultshim", "faultshim.so")

pytestmark = pytest.mark.skipif(not os.path.exists(SHIM),
                                reason="faultshim not built")


def shim_env(tmp_path, *rules):
    """The environment that runs a program under 'rules'."""
    log = tmp_path / "faults.log"
    env = {"LD_PRELOAD": os.path.abspath(SHIM),
           "FAULTSHIM_RULES": ";".join(rules),
           "FAULTSHIM_LOG": str(log)}
    if "ASAN_OPTIONS" in os.environ:
        # The sanitizer's runtime wants to come first; the shim only
        # wraps libc functions it does not intercept.
        env["ASAN_OPTIONS"] = os.environ["ASAN_OPTIONS"] + \
            ":verify_asan_link_order=0"
    return env


def faults(tmp_path):
    """The faults injected so far, one line each."""
    try:
        with open(tmp_path / "faults.log") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def leftovers(spool):
    """Everything under tmp/ and quarantine/: after a failed commit,
    nothing."""
    return sorted(os.listdir(os.path.join(spool, "tmp")) +
                  os.listdir(os.path.join(spool, "quarantine")))


def message(size=0):
    line = b"z" * 998 + b"\r\n"
    return b"Subject: test\r\n\r\nhello\r\n" + line * (size // 1000)


def relay_conf(port):
    return ('upstreams = ( { host = "127.0.0.1"; port = %d; '
            'security = "none"; timeouts = { connect = "2s"; }; } );\n'
            'queue = { retry = ( "1s" ); };\n' % port)


@pytest.mark.parametrize("rule,why", [
    ("fsync:EIO:path=*/spool/tmp/*.body:nth=1", "fsync of the body"),
    ("fsync:EIO:path=*/spool/tmp/*.env:nth=1", "fsync of the envelope"),
    ("fsync:EIO:path=*/spool/queue/?:nth=2", "fsync of the bucket after "
     "the commit point's rename"),
    ("rename:EIO:path=*/spool/queue/?/*.env:nth=1", "the commit point"),
    ("open:EACCES:path=*/spool/tmp/*.env:nth=1", "creating the envelope"),
])
def test_commit_fault_gives_451_and_leaves_nothing(tmp_path, daemon_factory,
                                                   rule, why):
    """A fault anywhere in the commit: the client reads 451 4.3.0, nothing
    of the message is left in tmp/ or the queue, and the daemon takes the
    next message."""
    d = start_posternd(daemon_factory, tmp_path,
                       env=shim_env(tmp_path, rule))
    reply = send_raw(d.port, "a@example.org", ["b@example.org"], message())
    assert reply.startswith("451 4.3.0"), (why, reply)
    assert len(faults(tmp_path)) == 1, faults(tmp_path)
    assert spool_messages(d.spool) == []
    assert leftovers(d.spool) == []
    reply = send_raw(d.port, "a@example.org", ["b@example.org"], message())
    assert reply.startswith("250 2.0.0"), reply
    assert len(spool_messages(d.spool)) == 1
    assert d.proc.poll() is None


def test_enospc_mid_message_gives_451(tmp_path, daemon_factory):
    """The second chunk of a 1 MB body hits ENOSPC: 451 4.3.0 at the end
    of the data, nothing left, and the daemon goes on."""
    d = start_posternd(daemon_factory, tmp_path, env=shim_env(
        tmp_path, "write:ENOSPC:path=*/spool/tmp/*.body:nth=2"))
    reply = send_raw(d.port, "a@example.org", ["b@example.org"],
                     message(1000 * 1000))
    assert reply.startswith("451 4.3.0"), reply
    assert faults(tmp_path), "the fault was never met"
    d.wait_for("event=spool-write-failed")
    assert spool_messages(d.spool) == []
    assert leftovers(d.spool) == []
    reply = send_raw(d.port, "a@example.org", ["b@example.org"],
                     message(1000 * 1000))
    assert reply.startswith("250 2.0.0"), reply


def test_sendmail_fsync_fault_is_75_and_leaves_nothing(tmp_path):
    """The same commit, run by sendmail without a daemon."""
    conf = tmp_path / "postern.conf"
    spool = tmp_path / "spool"
    conf.write_text('hostname = "localhost";\nspool_dir = "%s";\n' % spool)
    r = subprocess.run([POSTERN, "init-spool", "-c", str(conf)],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, **shim_env(
        tmp_path, "fsync:EIO:path=*/spool/queue/?:nth=1"))
    r = subprocess.run([POSTERN_SENDMAIL, "-C", str(conf), "b@example.org"],
                       input=b"Subject: x\n\nhi\n", capture_output=True,
                       timeout=30, env=env)
    assert r.returncode == 75, r.stderr
    assert b"Input/output error" in r.stderr
    assert len(faults(tmp_path)) == 1
    assert spool_messages(str(spool)) == []
    assert leftovers(str(spool)) == []


def queue_one(tmp_path, daemon_factory, peer_port):
    """A message committed by a daemon that could not deliver it; the
    daemon is stopped again.  Returns the spool and the message id."""
    d = start_posternd(daemon_factory, tmp_path, relay_conf(peer_port))
    reply = send_raw(d.port, "a@example.org", ["b@example.org"], message())
    assert reply.startswith("250 2.0.0"), reply
    assert d.stop() == 0
    msgs = spool_messages(d.spool)
    assert len(msgs) == 1
    return d.spool, msgs[0][0]["id"]


def test_unreadable_envelope_at_start_is_not_quarantined(
        tmp_path, daemon_factory, peer):
    """An envelope the daemon may not read (EACCES: a wrong owner or mode,
    which the operator can fix) is not damage: recovery and the scan
    leave it where it is and say so, the daemon starts, and once it can
    read the file again the message is delivered."""
    spool, msg_id = queue_one(tmp_path, daemon_factory, free_port())
    p = peer()
    d = start_posternd(daemon_factory, tmp_path, relay_conf(p.port),
                       env=shim_env(tmp_path, "open:EACCES:path=*/spool/"
                                    "queue/?/%s.env" % msg_id))
    assert faults(tmp_path), "the fault was never met"
    d.wait_for("event=spool-recovery action=skipped")
    assert os.listdir(os.path.join(spool, "quarantine")) == []
    assert [m[0]["id"] for m in spool_messages(spool)] == [msg_id]
    assert d.stop() == 0
    # Readable again: delivered.
    d = start_posternd(daemon_factory, tmp_path, relay_conf(p.port))
    deadline = time.monotonic() + 20
    while not p.messages() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(p.messages()) == 1
    assert os.listdir(os.path.join(spool, "quarantine")) == []


def test_failing_disk_at_start_stops_recovery(tmp_path, daemon_factory):
    """EIO reading an envelope may pass: recovery stops, the daemon does
    not start, and nothing is quarantined."""
    spool, msg_id = queue_one(tmp_path, daemon_factory, free_port())
    d = daemon_factory(str(tmp_path / "postern.conf"), shim_env(
        tmp_path, "read:EIO:path=*/spool/queue/?/%s.env" % msg_id))
    assert d.proc.wait(20) == 1
    d.wait_for("event=start-failed")
    assert os.listdir(os.path.join(spool, "quarantine")) == []
    assert [m[0]["id"] for m in spool_messages(spool)] == [msg_id]


def tear_under_lock(path):
    """Cuts the last bytes off an envelope while holding its lock, as
    the daemon and `postern queue` lock it: no attempt in flight can
    rewrite it meanwhile.  The lock follows the file across rewrites, so
    the name must still be the file locked."""
    import fcntl
    for _ in range(100):
        with open(path, "r+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            if os.stat(path).st_ino != os.fstat(f.fileno()).st_ino:
                continue        # rewritten while we waited
            f.truncate(os.fstat(f.fileno()).st_size - 10)
            return
    raise AssertionError("could not lock %s" % path)


def test_envelope_torn_while_running_is_quarantined(tmp_path, daemon_factory):
    """An envelope damaged while the daemon runs (a disk that lost a
    block, a careless edit) is found at the next attempt, under the
    message's lock, and quarantined with its body then, not retried
    until the next start."""
    dead = free_port()
    # No breaker: every retry (1 s) loads the message again.
    d = start_posternd(daemon_factory, tmp_path, relay_conf(dead).replace(
        'retry = ( "1s" );', 'retry = ( "1s" ); breaker_failures = 1000;'))
    reply = send_raw(d.port, "a@example.org", ["b@example.org"], message())
    assert reply.startswith("250 2.0.0"), reply
    msg_id = reply.split()[-1]
    d.wait_for("event=deferred")
    env = os.path.join(d.spool, "queue", msg_id[-1], msg_id + ".env")
    tear_under_lock(env)
    i = d.wait_for("event=quarantined id=%s" % msg_id, timeout=30)
    assert "torn" in d.lines[i] or "end line" in d.lines[i], d.lines[i]
    assert sorted(os.listdir(os.path.join(d.spool, "quarantine"))) == \
        [msg_id + ".body", msg_id + ".env"]
    assert spool_messages(d.spool) == []
    assert not any("event=load-failed" in line for line in d.lines)


@pytest.fixture
def tmpfs16(tmp_path):
    """A 16 MiB volume, below the 64 MiB smallest default reserve."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "vol"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs",
                        str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % r.stderr.decode())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def mail_from(port, size=None):
    """The reply to MAIL FROM, with SIZE= when given."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rwb")
        f.readline()
        f.write(b"EHLO me.test\r\n")
        f.flush()
        while f.readline()[3:4] == b"-":
            pass
        f.write(b"MAIL FROM:<a@example.org>%s\r\n" %
                (b" SIZE=%d" % size if size is not None else b""))
        f.flush()
        return f.readline().decode()


def test_small_volume_takes_mail_with_a_reserve_sized_to_it(
        tmp_path, daemon_factory, tmpfs16):
    """The reserve is at most an eighth of the volume (2 MiB here): mail
    is taken; a SIZE that does not fit with the reserve is 452 4.3.1;
    without SIZE only the reserve is checked, and once the volume is
    filled into it, MAIL is 452 4.3.1 as well."""
    spool = str(tmpfs16 / "spool")
    d = start_posternd(daemon_factory, tmp_path,
                       env={"POSTERN_SPOOL_DIR": spool})
    reply = send_raw(d.port, "a@example.org", ["b@example.org"],
                     message(1000 * 1000))
    assert reply.startswith("250 2.0.0"), reply
    assert mail_from(d.port, 10 * 1000 * 1000).startswith("250")
    assert mail_from(d.port, 15 * 1000 * 1000).startswith("452 4.3.1")
    # Fill the volume until less than the reserve is left.
    st = os.statvfs(spool)
    filler = os.path.join(str(tmpfs16), "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * (st.f_bavail * st.f_frsize - 1024 * 1024))
    assert mail_from(d.port).startswith("452 4.3.1")
    d.wait_for("event=spool-full")
    os.unlink(filler)
    reply = send_raw(d.port, "a@example.org", ["b@example.org"], message())
    assert reply.startswith("250 2.0.0"), reply
