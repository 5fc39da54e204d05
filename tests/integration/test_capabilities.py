"""What an upstream's EHLO says it can take (SIZE, SMTPUTF8) against what
a message needs: a limit of one upstream sends the message to the next
one, and only a message no upstream can take is bounced.  SMTPUTF8 is
needed only by mail with UTF-8 in its envelope or header section (RFC 6531
3.4), not by every message whose client asked for it.  Real peers only:
aiosmtpd upstreams (SIZE with --size, SMTPUTF8 with --smtputf8), Python's
smtplib and postern-sendmail as clients."""

import os
import smtplib
import subprocess

import pytest

from conftest import POSTERN_SENDMAIL, send_raw, spool_messages, \
    start_posternd, wait_until
from test_delivery import envelope_of, relay_conf

BIG_BODY = b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 100


def mail_options(message):
    """The MAIL parameters the peer recorded."""
    head = message.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if line.startswith(b"X-Mail-Options:"):
            return line[len(b"X-Mail-Options:"):].split()
    raise AssertionError("no X-Mail-Options line")


def bounces(p):
    return [m for m in p.messages() if envelope_of(m)[0] == "<>"]


def smtputf8_send(port, sender, rcpts, data):
    """A real client asking for SMTPUTF8 whatever the message holds."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("me.test")
        assert c.has_extn("smtputf8")
        c.sendmail(sender, rcpts, data, mail_options=["SMTPUTF8"])


def test_size_of_the_first_upstream_sends_it_to_the_second(
        tmp_path, daemon_factory, peer):
    small = peer(extra=["--size", "10"])
    big = peer()
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        ("small", small.port), ("big", big.port)))
    assert send_raw(d.port, "a@example.org", ["b@example.org"],
                    BIG_BODY).startswith("250")
    wait_until(lambda: len(big.messages()) == 1, what="delivery by big")
    assert envelope_of(big.messages()[0]) == ("a@example.org",
                                              ["b@example.org"])
    line = d.lines[d.wait_for("event=upstream-unable")]
    assert 'upstream=small ' in line and "size limit" in line
    d.wait_for('event=delivered')
    wait_until(lambda: spool_messages(d.spool) == [], what="removal")
    assert small.messages() == []
    assert not any("event=failed" in l for l in d.lines)
    # Known now: the next big message goes past the small one at once.
    assert send_raw(d.port, "a@example.org", ["c@example.org"],
                    BIG_BODY).startswith("250")
    wait_until(lambda: len(big.messages()) == 2, what="second delivery")
    assert bounces(big) == []


def test_too_big_for_every_upstream_bounces(tmp_path, daemon_factory, peer):
    one = peer(extra=["--size", "2000"])
    two = peer(extra=["--size", "3000"])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        ("one", one.port), ("two", two.port)))
    send_raw(d.port, "a@example.org", ["b@example.org"], BIG_BODY)
    d.wait_for("event=failed")
    wait_until(lambda: len(one.messages()) == 1, what="the bounce")
    assert b"Status: 5.3.4" in one.messages()[0]
    assert envelope_of(one.messages()[0]) == ("<>", ["a@example.org"])
    assert two.messages() == []
    wait_until(lambda: spool_messages(d.spool) == [], what="queue empty")


def test_too_big_for_one_and_the_other_down_waits(tmp_path, daemon_factory,
                                                  peer):
    """The upstream that could take it is down: the message waits for it
    rather than bounce."""
    from conftest import free_port
    small = peer(extra=["--size", "10"])
    down = free_port()
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        ("small", small.port), ("later", down)))
    send_raw(d.port, "a@example.org", ["b@example.org"], BIG_BODY)
    d.wait_for("event=deferred")
    wait_until(lambda: spool_messages(d.spool) and
               spool_messages(d.spool)[0][0]["rcpt.state"] == ["deferred"],
               what="the saved attempt")
    assert small.messages() == []
    later = peer(port=down)
    wait_until(lambda: len(later.messages()) == 1, timeout=30,
               what="delivery once it is up")
    assert bounces(later) == [] and small.messages() == []


def test_smtputf8_of_the_second_upstream_takes_utf8_mail(
        tmp_path, daemon_factory, peer):
    plain = peer()
    utf8 = peer(extra=["--smtputf8"])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        ("plain", plain.port), ("utf8", utf8.port)))
    smtputf8_send(d.port, "a@example.org", ["b@example.org"],
                  "Subject: Grüße\r\n\r\nhallo\r\n".encode())
    wait_until(lambda: len(utf8.messages()) == 1, what="delivery by utf8")
    assert b"SMTPUTF8" in mail_options(utf8.messages()[0])
    assert "Grüße".encode() in utf8.messages()[0]
    line = d.lines[d.wait_for("event=upstream-unable")]
    assert 'upstream=plain ' in line and "SMTPUTF8" in line
    assert plain.messages() == []
    wait_until(lambda: spool_messages(d.spool) == [], what="removal")


def test_ascii_mail_flagged_smtputf8_goes_to_a_server_without_it(
        tmp_path, daemon_factory, peer):
    """The client asked for SMTPUTF8, but nothing in the message needs
    it: delivered, without the parameter, instead of bounced."""
    p = peer()
    d = start_posternd(daemon_factory, tmp_path, relay_conf(("up", p.port)))
    smtputf8_send(d.port, "a@example.org", ["b@example.org"],
                  b"Subject: plain\r\n\r\n\xc3\xa4 in the body only\r\n")
    wait_until(lambda: len(p.messages()) == 1, what="delivery")
    assert envelope_of(p.messages()[0]) == ("a@example.org",
                                            ["b@example.org"])
    assert b"SMTPUTF8" not in mail_options(p.messages()[0])
    wait_until(lambda: spool_messages(d.spool) == [], what="removal")
    assert not any("event=failed" in l for l in d.lines)


def test_ascii_mail_keeps_smtputf8_for_a_server_with_it(
        tmp_path, daemon_factory, peer):
    p = peer(extra=["--smtputf8"])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(("up", p.port)))
    smtputf8_send(d.port, "a@example.org", ["b@example.org"],
                  b"Subject: plain\r\n\r\nbody\r\n")
    wait_until(lambda: len(p.messages()) == 1, what="delivery")
    assert b"SMTPUTF8" in mail_options(p.messages()[0])


@pytest.mark.parametrize("rcpt,data", [
    ("b@example.org", "Subject: Grüße\r\n\r\nhallo\r\n".encode()),
    ("jörg@example.org", b"Subject: plain\r\n\r\nhallo\r\n"),
])
def test_utf8_mail_without_any_smtputf8_upstream_bounces(
        tmp_path, daemon_factory, peer, rcpt, data):
    p = peer()
    d = start_posternd(daemon_factory, tmp_path, relay_conf(("up", p.port)))
    smtputf8_send(d.port, "a@example.org", [rcpt], data)
    d.wait_for("event=failed")
    wait_until(lambda: len(p.messages()) == 1, what="the bounce")
    report = p.messages()[0]
    assert envelope_of(report) == ("<>", ["a@example.org"])
    assert b"Status: 5.6.7" in report
    # It quotes UTF-8: the report says so (RFC 6533), and goes as 8-bit
    # data without needing SMTPUTF8 itself (its own addresses are ASCII).
    assert b"Content-Type: message/global-delivery-status" in report
    assert b"Content-Type: message/global" in report
    assert b"BODY=8BITMIME" in mail_options(report)
    assert b"SMTPUTF8" not in mail_options(report)
    wait_until(lambda: spool_messages(d.spool) == [], what="queue empty")


def test_bounce_of_8bit_mail_is_sent_as_8bitmime(tmp_path, daemon_factory,
                                                 peer):
    from conftest import smtp_chat
    p = peer(extra=["--reject", "gone@example.org"])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(("up", p.port)))
    out = smtp_chat(d.port, [
        "EHLO me.test", "MAIL FROM:<a@example.org> BODY=8BITMIME",
        "RCPT TO:<gone@example.org>", "DATA",
        "Subject: 8bit\r\n\r\nda\u00df ist 8bit\r\n.", "QUIT"])
    assert out[5].startswith("250 2.0.0"), out
    d.wait_for("event=failed")
    wait_until(lambda: len(bounces(p)) == 1, what="the bounce")
    report = bounces(p)[0]
    assert b"BODY=8BITMIME" in mail_options(report)
    assert "da\u00df ist 8bit".encode() in report
    assert b"Content-Type: message/rfc822" in report
    assert b"Content-Transfer-Encoding: 8bit" in report


@pytest.mark.skipif(not os.path.exists(POSTERN_SENDMAIL),
                    reason="postern-sendmail not built")
def test_sendmail_records_whether_smtputf8_is_needed(tmp_path,
                                                     daemon_factory, peer):
    """sendmail(1) looks at the message itself: a UTF-8 header needs
    SMTPUTF8, an ASCII one does not."""
    p = peer()
    d = start_posternd(daemon_factory, tmp_path, relay_conf(("up", p.port)))
    d.stop()
    for data in ("Subject: Grüße\n\nx\n".encode(),
                 b"Subject: plain\n\nx\n"):
        r = subprocess.run([POSTERN_SENDMAIL, "-C", d.conf, "-f",
                            "a@example.org", "b@example.org"], input=data,
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
    envs = [e for e, _ in spool_messages(d.spool)]
    assert envs[0]["smtputf8"] == "yes"
    assert envs[0]["x-smtputf8-needed"] == "yes"
    assert envs[1]["smtputf8"] == "no"
    assert "x-smtputf8-needed" not in envs[1]


def strip_needed_key(text):
    """An envelope as a postern from before x-smtputf8-needed wrote it:
    without the key, sealed again (doc/spool.md)."""
    lines = text.encode().split(b"\n")
    body = b"".join(l + b"\n" for l in lines[:-2]
                    if not l.startswith(b"x-smtputf8-needed "))
    h = 0xcbf29ce484222325
    for byte in body:
        h = ((h ^ byte) * 0x100000001b3) & 0xffffffffffffffff
    return body + b"end %d %016x\n" % (len(body), h)


def make_format1(spool, msgs):
    """Turns 'spool' into what a postern of spool format 1 left behind:
    queue/X/ID.env and ID.body for each of 'msgs' ({id: (envelope bytes,
    body)}), and nothing of format 2."""
    import shutil
    for sub in ("log", "bodies", "incoming"):
        shutil.rmtree(os.path.join(spool, sub))
    for i in range(16):
        os.makedirs(os.path.join(spool, "queue", "%x" % i), 0o700)
    for msg_id, (env, body) in msgs.items():
        base = os.path.join(spool, "queue", msg_id[-1], msg_id)
        with open(base + ".body", "wb") as f:
            f.write(body)
        with open(base + ".env", "wb") as f:
            f.write(env)
    with open(os.path.join(spool, "format"), "w") as f:
        f.write("postern-spool 1\n")


def test_envelopes_without_the_record_are_looked_at(tmp_path,
                                                    daemon_factory, peer):
    """Queued by an older postern (spool format 1, taken over at start):
    whether SMTPUTF8 is needed is not in the envelope, so delivery looks
    at the header section itself."""
    from conftest import free_port, spool_raw
    port = free_port()
    d = start_posternd(daemon_factory, tmp_path, relay_conf(("up", port)))
    smtputf8_send(d.port, "a@example.org", ["b@example.org"],
                  b"Subject: plain\r\n\r\n\xc3\xa4\r\n")
    smtputf8_send(d.port, "a@example.org", ["c@example.org"],
                  "Subject: Grüße\r\n\r\nx\r\n".encode())
    d.wait_for("event=deferred")
    d.stop()
    msgs = spool_raw(d.spool)
    assert len(msgs) == 2
    make_format1(d.spool, dict((k, (strip_needed_key(env), body))
                               for k, (env, body) in msgs.items()))
    p = peer(port=port)
    d2 = daemon_factory(d.conf)
    d2.wait_for("event=ready")
    with open(os.path.join(d.spool, "format")) as f:
        assert f.read() == "postern-spool 2\n"
    assert not os.path.exists(os.path.join(d.spool, "queue"))
    wait_until(lambda: len(p.messages()) == 2, timeout=30,
               what="delivery and bounce")
    plain = [m for m in p.messages() if envelope_of(m)[1] == ["b@example.org"]]
    assert len(plain) == 1 and b"SMTPUTF8" not in mail_options(plain[0])
    assert len(bounces(p)) == 1 and b"Status: 5.6.7" in bounces(p)[0]
