"""The spool under disk faults, injected by the test suite's LD_PRELOAD
library (tests/faultshim/faultshim.c says how rules are written), and the
spool's own housekeeping: damaged envelopes, unreadable files, free space
on small volumes.

Each rule names the files it hits by a pattern, so that replies, logs and
sockets are never touched; FAULTSHIM_LOG shows that the fault was met.
"""

import json
import os
import socket
import subprocess
import time

import pytest

from conftest import BUILD, POSTERN, POSTERN_SENDMAIL, free_port, \
    send_raw, spool_messages, start_posternd, wait_until

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
    ("open:EACCES:path=*/spool/log/*:nth=1", "creating a segment"),
    ("fallocate:ENOSPC:path=*/spool/log/*:nth=1", "preallocating it"),
    ("fsync:EIO:path=*/spool/log:nth=1", "flushing log/ for its name"),
    ("pwritev64:EIO:path=*/spool/log/*:nth=1", "writing the batch"),
    ("fdatasync:EIO:path=*/spool/log/*:nth=2", "flushing the batch"),
])
def test_commit_fault_gives_451_and_leaves_nothing(tmp_path, daemon_factory,
                                                   rule, why):
    """A fault anywhere in the commit: the client reads 451 4.3.0, nothing
    is left in tmp/, the daemon takes the next message, and the batch
    after the failed one cancels the failed message in the log (its
    record may have reached the disk), so only the second is queued."""
    d = start_posternd(daemon_factory, tmp_path,
                       env=shim_env(tmp_path, rule))
    reply = send_raw(d.port, "a@example.org", ["b@example.org"], message())
    assert reply.startswith("451 4.3.0"), (why, reply)
    assert len(faults(tmp_path)) == 1, faults(tmp_path)
    assert leftovers(d.spool) == []
    reply = send_raw(d.port, "a@example.org", ["b@example.org"], message())
    assert reply.startswith("250 2.0.0"), reply
    assert [m[0]["id"] for m in spool_messages(d.spool)] == \
        [reply.split()[-1]]
    assert d.proc.poll() is None


def test_failed_delivery_record_keeps_the_message(tmp_path, daemon_factory,
                                                  peer):
    """The flush that carries a delivery's result fails (the third flush
    of the log: the segment's header, the commit, then the result): the
    message was delivered but its removal is not on stable storage, so
    it stays queued, unlocked, and goes again when due; it is sent twice,
    never lost, and nothing stays stuck."""
    p = peer()
    d = start_posternd(daemon_factory, tmp_path, relay_conf(p.port),
                       env=shim_env(tmp_path, "fdatasync:EIO:"
                                    "path=*/spool/log/*:nth=3"))
    reply = send_raw(d.port, "a@example.org", ["b@example.org"], message())
    assert reply.startswith("250 2.0.0"), reply
    d.wait_for("event=save-failed")
    assert len(faults(tmp_path)) == 1, faults(tmp_path)
    assert len(p.messages()) == 1
    # The daemon keeps it (the removal may or may not have reached the
    # disk: after a failed flush the kernel does not say).
    st = json.loads(subprocess.run(
        [POSTERN, "status", "-c", d.conf, "--json"], capture_output=True,
        text=True, timeout=10, check=True).stdout)
    assert st["queue"]["total"] == 1, st["queue"]
    # Unlocked and due again at a flush: sent again, then removed.
    r = subprocess.run([POSTERN, "flush", "-c", d.conf],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: len(p.messages()) == 2, what="the second delivery")
    wait_until(lambda: spool_messages(d.spool) == [], what="removal")
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


def sendmail_spool(tmp_path, env=None):
    """A spool made by init-spool, and sendmail run on it with no daemon
    (in the environment 'env' if given): returns the conf, the spool and
    sendmail's result."""
    conf = tmp_path / "postern.conf"
    spool = tmp_path / "spool"
    conf.write_text('hostname = "localhost";\nspool_dir = "%s";\n' % spool)
    r = subprocess.run([POSTERN, "init-spool", "-c", str(conf)],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([POSTERN_SENDMAIL, "-C", str(conf), "b@example.org"],
                       input=b"Subject: x\n\nhi\n", capture_output=True,
                       timeout=30, env=env)
    return conf, spool, r


def test_sendmail_fsync_fault_is_75_and_leaves_nothing(tmp_path):
    """The same commit, run by sendmail without a daemon."""
    conf, spool, r = sendmail_spool(tmp_path, dict(os.environ, **shim_env(
        tmp_path, "fsync:EIO:path=*/spool/incoming:nth=1")))
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


def drop_one(tmp_path):
    """A message queued by sendmail with no daemon running: a drop in
    incoming/.  Returns the spool and the message id."""
    conf, spool, r = sendmail_spool(tmp_path)
    assert r.returncode == 0, r.stderr
    (msg_id,) = os.listdir(spool / "incoming")
    return str(spool), msg_id


def test_unreadable_drop_at_start_is_not_quarantined(
        tmp_path, daemon_factory, peer):
    """A drop the daemon may not read (EACCES: a wrong owner or mode,
    which the operator can fix) is not damage: recovery leaves it where
    it is and says so, the daemon starts, and once it can read the file
    again the message is delivered."""
    spool, msg_id = drop_one(tmp_path)
    p = peer()
    d = start_posternd(daemon_factory, tmp_path, relay_conf(p.port),
                       env=shim_env(tmp_path, "open:EACCES:path=*/spool/"
                                    "incoming/%s" % msg_id))
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
    """EIO reading the log may pass: recovery stops, the daemon does not
    start, and nothing is quarantined."""
    spool, msg_id = queue_one(tmp_path, daemon_factory, free_port())
    d = daemon_factory(str(tmp_path / "postern.conf"), shim_env(
        tmp_path, "read:EIO:path=*/spool/log/*"))
    assert d.proc.wait(20) == 1
    d.wait_for("event=start-failed")
    assert os.listdir(os.path.join(spool, "quarantine")) == []
    assert [m[0]["id"] for m in spool_messages(spool)] == [msg_id]


def damage_envelope(spool, msg_id):
    """Changes a byte of the message's current envelope where it lies in
    the log, as a disk that lost a block would."""
    import glob
    import struct
    where = None
    for path in sorted(glob.glob(os.path.join(spool, "log", "*"))):
        with open(path, "rb") as f:
            data = f.read()
        off = 32
        while off + 32 <= len(data) and data[off:off + 4] == b"PSTR":
            rid, env_len, data_len = struct.unpack_from("<QII", data, off + 8)
            if "%016x" % rid == msg_id and data[off + 4] in (1, 2):
                where = (path, off + 32 + env_len // 2)
            off = (off + 32 + env_len + data_len + 7) & ~7
    assert where is not None, "no envelope of %s in the log" % msg_id
    with open(where[0], "r+b") as f:
        f.seek(where[1])
        byte = f.read(1)
        f.seek(where[1])
        f.write(bytes([byte[0] ^ 0x20]))


def test_envelope_torn_while_running_is_quarantined(tmp_path, daemon_factory):
    """An envelope damaged while the daemon runs (a disk that lost a
    block) is found at the next attempt, when it is read under the
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
    # An attempt under way when the byte changes writes the envelope anew
    # at its end, past the damage: then damage the new one.
    for _ in range(10):
        damage_envelope(d.spool, msg_id)
        try:
            i = d.wait_for("event=quarantined id=%s" % msg_id, timeout=3)
            break
        except AssertionError:
            continue
    assert "torn" in d.lines[i], d.lines[i]
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


def test_faults_in_the_upkeep_keep_the_waiting_message(
        tmp_path, daemon_factory, peer, tmpfs16):
    """On a 16 MiB volume (segments of 1 MiB) a message that waits
    (greylisted for ever) pins the oldest segment while 3 MB of mail
    goes through.  The upkeep then meets a failing disk: the write of
    the copy forward fails once; the next message is taken, the daemon
    restarts; then the unlink of the old segment fails once.  Each
    failure is reported, the next round does the work, and the message
    that waits is queued all along and after each restart."""
    p = peer(extra=["--defer", "wait@example.org"])
    spool = str(tmpfs16 / "spool")
    log = os.path.join(spool, "log")
    arm = tmp_path / "armed"
    conf = ('upstreams = ( { host = "127.0.0.1"; port = %d; '
            'security = "none"; } );\nqueue = { retry = ( "1h" ); };\n'
            % p.port)

    def daemon(rule):
        env = shim_env(tmp_path, rule + ":while=%s:count=1" % arm)
        env["POSTERN_SPOOL_DIR"] = spool
        return start_posternd(daemon_factory, tmp_path, conf, env=env)

    def queued():
        r = subprocess.run([POSTERN, "queue", "list", "--json", "-c",
                            str(tmp_path / "postern.conf")],
                           capture_output=True, text=True, timeout=10,
                           env=dict(os.environ, POSTERN_SPOOL_DIR=spool))
        assert r.returncode == 0, r.stderr
        return sorted(m["id"] for m in json.loads(r.stdout))

    d = daemon("pwritev64:EIO:path=*/spool/log/*")
    reply = send_raw(d.port, "a@example.org", ["wait@example.org"],
                     message())
    assert reply.startswith("250 2.0.0"), reply
    waiting = reply.split()[-1]
    d.wait_for("event=deferred")
    for _ in range(30):
        reply = send_raw(d.port, "a@example.org", ["b@example.org"],
                         message(100 * 1000))
        assert reply.startswith("250 2.0.0"), reply
    wait_until(lambda: sum("event=removed" in x for x in d.lines) == 30,
               what="the traffic's removals")
    assert len(os.listdir(log)) >= 3, os.listdir(log)
    oldest = min(os.listdir(log))
    # The copy forward fails: the upkeep says so, the old segment stays.
    arm.touch()
    d.wait_for("event=spool-upkeep-failed", timeout=30)
    arm.unlink()
    assert len(faults(tmp_path)) == 1, faults(tmp_path)
    assert oldest in os.listdir(log)
    # A batch after the failed one, then a restart: still queued.
    reply = send_raw(d.port, "a@example.org", ["b@example.org"], message())
    assert reply.startswith("250 2.0.0"), reply
    wait_until(lambda: sum("event=removed" in x for x in d.lines) == 31,
               what="the last removal")
    d.stop()
    assert queued() == [waiting]
    # Giving the old segment back fails once; the next round does it.
    d = daemon("unlinkat:EIO:path=*/spool/log/*")
    arm.touch()
    d.wait_for("event=spool-upkeep-failed", timeout=30)
    arm.unlink()
    wait_until(lambda: oldest not in os.listdir(log), timeout=30,
               what="the oldest segment given back")
    assert queued() == [waiting]
    d.stop()
    assert queued() == [waiting]


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
