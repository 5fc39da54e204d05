"""postern queue: list, show, hold, release and delete, as people and
scripts (--json) use them, with and without posternd running."""

import calendar
import fcntl
import glob
import json
import os
import subprocess
import time

import pytest

from conftest import BUILD, POSTERN, free_port, \
    spool_messages, start_posternd

SENDMAIL = os.path.join(BUILD, "daemon", "postern-sendmail")

CONF = '''hostname = "relay.test";
spool_dir = "%s";
default_domain = "example.org";
'''


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "postern.conf"
    path.write_text(CONF % (tmp_path / "spool"))
    # What posternd's first start does; sendmail never creates it.
    r = subprocess.run([POSTERN, "init-spool", "-c", str(path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return str(path)


def queue(conf, *args, timeout=30):
    return subprocess.run([POSTERN, "queue", "-c", conf, *args],
                          capture_output=True, text=True, timeout=timeout)


def submit(conf, *rcpts, sender="alice@example.net", subject="test"):
    r = subprocess.run([SENDMAIL, "-C", conf, "-f", sender, *rcpts],
                       input=("Subject: %s\n\nhello\n" % subject).encode(),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r


def spool_dir(conf):
    with open(conf) as f:
        for line in f:
            if line.startswith("spool_dir"):
                return line.split('"')[1]
    raise AssertionError("no spool_dir")


def envelope(conf, msg_id):
    """The message's envelope as the spool holds it now."""
    return dict((m[0]["id"], m[0]) for m in
                spool_messages(spool_dir(conf)))[msg_id]


def drop_path(conf, msg_id):
    return os.path.join(spool_dir(conf), "incoming", msg_id)


def ids(conf):
    return [m[0]["id"] for m in spool_messages(spool_dir(conf))]


def test_list_of_a_spool_never_created(conf):
    r = queue(conf, "list")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Mail queue is empty\n"
    r = queue(conf, "list", "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout) == []


def test_list_text_and_json(conf):
    submit(conf, "bob@example.net", "carol@example.net")
    submit(conf, "dave@example.net", sender="<>")
    first, second = ids(conf)
    r = queue(conf, "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "ARRIVAL", "SIZE", "SENDER", "/",
                                "RECIPIENTS"]
    assert lines[1].startswith(first + "  ")
    assert lines[1].endswith("  alice@example.net")
    assert lines[2:4] == ["    -> bob@example.net  pending",
                          "    -> carol@example.net  pending"]
    assert lines[4].startswith(second + "  ") and lines[4].endswith("  <>")
    assert lines[5] == "    -> dave@example.net  pending"
    assert lines[6].startswith("-- 2 messages, ")

    r = queue(conf, "--json", "list")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [m["id"] for m in doc] == [first, second]
    m = doc[0]
    env = envelope(conf, first)
    assert m["sender"] == "alice@example.net"
    assert m["size"] == int(env["size"])
    assert m["origin"] == "sendmail uid=%d" % os.getuid()
    assert m["held"] is False and m["attempts"] == 0
    assert m["next_attempt"] is None and m["last_error"] is None
    assert m["arrival"].endswith("Z")
    assert calendar.timegm(time.strptime(m["arrival"],
                                         "%Y-%m-%dT%H:%M:%SZ")) == \
        int(env["arrival"])
    assert [(x["address"], x["state"]) for x in m["recipients"]] == \
        [("bob@example.net", "pending"), ("carol@example.net", "pending")]
    assert doc[1]["sender"] == ""


def test_show_text_and_json(conf):
    submit(conf, "bob@example.net", subject="shown")
    (msg_id,) = ids(conf)
    r = queue(conf, "show", msg_id)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("id:           %s\n" % msg_id)
    assert "sender:       <alice@example.net>\n" in out
    assert "state:        queued\n" in out
    assert "recipients:\n  bob@example.net  pending\n" in out
    assert "headers:\n  Received: by relay.test" in out
    assert "\n  Subject: shown\n" in out
    assert "hello" not in out   # the body is not shown

    r = queue(conf, "show", msg_id, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["id"] == msg_id
    assert doc["recipients"][0]["address"] == "bob@example.net"
    assert "Subject: shown" in doc["headers"]
    assert doc["headers"][1].startswith("\tid " + msg_id)
    assert doc["headers_truncated"] is False


def test_hold_and_release(conf):
    submit(conf, "bob@example.net")
    (msg_id,) = ids(conf)
    r = queue(conf, "hold", msg_id)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "%s: held\n" % msg_id
    assert envelope(conf, msg_id)["held"] == "yes"
    r = queue(conf, "list")
    assert r.stdout.splitlines()[2] == "    held"
    assert r.stdout.splitlines()[-1].endswith(", 1 held")
    assert json.loads(queue(conf, "list", "--json").stdout)[0]["held"]

    r = queue(conf, "--json", "release", msg_id)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"id": msg_id, "result": "released"}
    assert envelope(conf, msg_id)["held"] == "no"
    assert "held" not in queue(conf, "list").stdout


def test_delete(conf):
    submit(conf, "bob@example.net")
    submit(conf, "carol@example.net")
    first, second = ids(conf)
    r = queue(conf, "delete", first)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "%s: deleted\n" % first
    assert ids(conf) == [second]
    assert glob.glob(os.path.join(spool_dir(conf), "queue", "*",
                                  first + ".*")) == []
    r = queue(conf, "delete", first)
    assert r.returncode == 1
    assert r.stderr == "postern queue: no message %s in the queue\n" % first
    r = queue(conf, "--json", "delete", second)
    assert json.loads(r.stdout) == {"id": second, "result": "deleted"}
    assert queue(conf, "list").stdout == "Mail queue is empty\n"


@pytest.mark.parametrize("action", ["show", "delete", "hold", "release"])
@pytest.mark.parametrize("bad", ["xyz", "0123456789ABCDEF",
                                 "../../etc/passwd", "0123456789abcdef0"])
def test_bad_id_is_named(conf, action, bad):
    submit(conf, "bob@example.net")
    r = queue(conf, action, bad)
    assert r.returncode == 1
    assert r.stderr == ('postern queue: "%s" is not a queue id (16 '
                        'lower-case hex digits, as "postern queue list" '
                        'shows)\n' % bad)
    assert len(ids(conf)) == 1


@pytest.mark.parametrize("action", ["show", "hold", "release"])
def test_missing_message(conf, action):
    submit(conf, "bob@example.net")
    r = queue(conf, action, "0000000000000000")
    assert r.returncode == 1
    assert r.stderr == ("postern queue: no message 0000000000000000 in the "
                        "queue\n")


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["show"],
                                  ["list", "extra"], ["delete", "a", "b"],
                                  ["--bogus", "list"]])
def test_usage_errors_are_2(conf, args):
    r = queue(conf, *args)
    assert r.returncode == 2
    assert "usage: postern queue" in r.stderr


def test_change_waits_for_a_tool_holding_the_spool(conf):
    """Another tool's change (it holds the daemon lock while it writes):
    refused with the reason, never written past it."""
    submit(conf, "bob@example.net")
    (msg_id,) = ids(conf)
    fd = os.open(os.path.join(spool_dir(conf), "lock"),
                 os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        r = queue(conf, "delete", msg_id)
        assert r.returncode == 1
        assert "posternd is not running" in r.stderr, r.stderr
        assert ids(conf) == [msg_id]
    finally:
        os.close(fd)
    r = queue(conf, "delete", msg_id)
    assert r.returncode == 0, r.stderr
    assert ids(conf) == []


def test_queue_commands_while_posternd_runs(tmp_path, daemon_factory):
    d = start_posternd(
        daemon_factory, tmp_path,
        'upstreams = ( { name = "dead"; host = "127.0.0.1"; port = %d; '
        'security = "none"; } );\n' % free_port())
    submit(d.conf, "bob@example.net")
    (msg_id,) = [m[0]["id"] for m in spool_messages(d.spool)]
    # The daemon makes the changes (one writer): it says so in its log.
    mark = 0
    for action, event in (("hold", "held"), ("release", "released")):
        r = queue(d.conf, action, msg_id)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "%s: %s\n" % (msg_id, event)
        mark = d.wait_for("event=%s id=%s by=operator" % (event, msg_id),
                          start=mark)
        if action == "hold":
            # A held message is not made due by a flush: it says why.
            r = subprocess.run([POSTERN, "flush", "-c", d.conf, msg_id],
                               capture_output=True, text=True, timeout=10)
            assert r.returncode == 1
            assert "the message is held (release it first)" in r.stderr
    r = queue(d.conf, "--json", "list")
    assert r.returncode == 0, r.stderr
    assert [m["id"] for m in json.loads(r.stdout)] == [msg_id]
    r = queue(d.conf, "delete", msg_id)
    assert r.returncode == 0, r.stderr
    d.wait_for("event=deleted id=%s by=operator" % msg_id, start=mark)
    assert spool_messages(d.spool) == []
    # A message that is not there: the daemon's answer, the tool's words.
    r = queue(d.conf, "hold", msg_id)
    assert r.returncode == 1
    assert r.stderr == "postern queue: no message %s in the queue\n" % msg_id
    assert d.proc.poll() is None


def test_unreadable_envelope_is_reported_and_skipped(conf):
    submit(conf, "bob@example.net")
    submit(conf, "carol@example.net")
    first, second = ids(conf)
    with open(drop_path(conf, first), "r+b") as f:
        f.seek(100)
        f.write(b"torn")
    r = queue(conf, "list", "--json")
    assert r.returncode == 0
    assert [m["id"] for m in json.loads(r.stdout)] == [second]
    assert r.stderr.startswith("postern queue: warning: skipped "
                               "incoming/%s: " % first), r.stderr
