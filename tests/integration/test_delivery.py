"""Mail flowing end to end: a real client (swaks, smtp-source) into
posternd, and posternd delivering to a real server (aiosmtpd) with its
policies: refusals, greylisting, slow or dying servers, failover."""

import os
import subprocess
import time

import pytest

from conftest import free_port, spool_messages, start_posternd, \
    send_raw, wait_until, POSTERN_SENDMAIL

SMTP_SOURCE = "/usr/sbin/smtp-source"


def relay_conf(*upstreams, queue='retry = ( "1s" );'):
    ups = ", ".join('{ name = "%s"; host = "127.0.0.1"; port = %d; '
                    'security = "none"; timeouts = { connect = "2s"; '
                    'command = "10s"; }; }' % (name, port)
                    for name, port in upstreams)
    return "upstreams = ( %s );\nqueue = { %s };\n" % (ups, queue)



def envelope_of(message):
    """The X-Mail-From / X-Rcpt-To lines the peer put on top."""
    head = message.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    frm = [l[len("X-Mail-From: "):] for l in lines
           if l.startswith("X-Mail-From: ")][0]
    rcpts = [l[len("X-Rcpt-To: "):] for l in lines
             if l.startswith("X-Rcpt-To: ")]
    return frm, rcpts


def test_message_is_delivered_and_removed(tmp_path, daemon_factory, peer):
    p = peer()
    d = start_posternd(daemon_factory, tmp_path, relay_conf(("up", p.port)))
    reply = send_raw(d.port, "alice@example.org",
                     ["bob@example.org", "carol@example.org"],
                     b"Subject: hi\r\n\r\n..dot\r\nbody\r\n")
    assert reply.startswith("250 2.0.0")
    wait_until(lambda: len(p.messages()) == 1, what="delivery")
    frm, rcpts = envelope_of(p.messages()[0])
    assert frm == "alice@example.org"
    assert sorted(rcpts) == ["bob@example.org", "carol@example.org"]
    assert b"\r\nSubject: hi\r\n\r\n.dot\r\nbody\r\n" in p.messages()[0]
    assert b"Received: from me.test" in p.messages()[0]
    wait_until(lambda: spool_messages(d.spool) == [], what="removal")
    d.wait_for("event=removed")


def test_one_refused_of_three_bounces_with_upstream_text(
        tmp_path, daemon_factory, peer):
    p = peer(extra=["--reject", "nobody@example.org"])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(("up", p.port)))
    send_raw(d.port, "alice@example.org",
             ["bob@example.org", "nobody@example.org", "carol@example.org"],
             b"Subject: three\r\nMessage-ID: <m3@example.org>\r\n\r\nhello\r\n")
    wait_until(lambda: len(p.messages()) == 2, what="message and bounce")
    msgs = [envelope_of(m) + (m,) for m in p.messages()]
    original = [m for m in msgs if m[0] == "alice@example.org"][0]
    bounce = [m for m in msgs if m[0] == "<>"][0]
    assert sorted(original[1]) == ["bob@example.org", "carol@example.org"]
    assert bounce[1] == ["alice@example.org"]
    text = bounce[2].decode()
    assert "Content-Type: multipart/report; report-type=delivery-status" \
        in text
    assert "Final-Recipient: rfc822; nobody@example.org" in text
    assert "Action: failed" in text
    assert "Status: 5.1.1" in text
    assert "Diagnostic-Code: smtp; 550" in text
    assert "Recipient address rejected" in text
    assert "Message-ID: <m3@example.org>" in text      # the original
    assert "bob@example.org" not in text.split("message/delivery-status")[1] \
        .split("message/rfc822")[0]
    wait_until(lambda: spool_messages(d.spool) == [], what="queue empty")


def test_greylisting_is_retried(tmp_path, daemon_factory, peer):
    p = peer(extra=["--defer-data", "1"])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(("up", p.port)))
    send_raw(d.port, "a@example.org", ["b@example.org"],
             b"Subject: later\r\n\r\nx\r\n")
    d.wait_for("event=deferred")
    d.wait_for("event=retry")
    wait_until(lambda: len(p.messages()) == 1, what="second attempt")
    d.wait_for("event=delivered")
    wait_until(lambda: spool_messages(d.spool) == [], what="removal")


def test_deferred_reason_kept_in_the_envelope(tmp_path, daemon_factory,
                                              peer):
    p = peer(extra=["--defer", "slow@example.org"])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        ("up", p.port), queue='retry = ( "1h" );'))
    send_raw(d.port, "a@example.org", ["slow@example.org"], b"\r\nx\r\n")
    wait_until(lambda: spool_messages(d.spool)[0][0]["attempts"] == "1",
               what="the saved attempt")
    env, _ = spool_messages(d.spool)[0]
    assert env["rcpt.state"] == ["deferred"]
    assert env["rcpt.code"] == ["451"]
    assert "greylisted" in env["rcpt.error"][0]
    assert env["attempts"] == "1"
    assert int(env["next-attempt"]) > time.time() + 3000


def test_expired_message_bounces(tmp_path, daemon_factory, peer):
    p = peer(extra=["--defer", "slow@example.org"])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        ("up", p.port), queue='retry = ( "1s" ); max_age = "3s";'))
    send_raw(d.port, "a@example.org", ["slow@example.org"],
             b"Subject: old\r\n\r\nx\r\n")
    d.wait_for("event=expired", timeout=20)
    wait_until(lambda: len(p.messages()) == 1, what="bounce")
    frm, rcpts = envelope_of(p.messages()[0])
    assert frm == "<>" and rcpts == ["a@example.org"]
    assert b"Status: 5.4.7" in p.messages()[0]
    assert b"greylisted" in p.messages()[0]
    wait_until(lambda: spool_messages(d.spool) == [], what="queue empty")


def test_null_sender_is_never_bounced(tmp_path, daemon_factory, peer):
    p = peer(extra=["--reject", "gone@example.org"])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(("up", p.port)))
    send_raw(d.port, "", ["gone@example.org"], b"Subject: dsn\r\n\r\nx\r\n")
    d.wait_for("event=failed")
    d.wait_for("event=bounce-dropped")
    wait_until(lambda: spool_messages(d.spool) == [], what="removal")
    time.sleep(0.5)
    assert p.messages() == []


def test_upstream_killed_mid_data_is_redelivered(tmp_path, daemon_factory,
                                                 peer):
    port = free_port()
    slow = peer(port=port, extra=["--slow-data", "30"])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(("up", port)))
    send_raw(d.port, "a@example.org", ["b@example.org"],
             b"Subject: survive\r\n\r\n" + b"line\r\n" * 1000)
    time.sleep(1.0)        # posternd is now waiting for the dot's reply
    slow.proc.kill()
    slow.proc.wait()
    d.wait_for("event=deferred")
    assert len(spool_messages(d.spool)) == 1
    good = peer(port=port)
    wait_until(lambda: len(good.messages()) == 1, what="redelivery")
    assert b"Subject: survive" in good.messages()[0]
    wait_until(lambda: spool_messages(d.spool) == [], what="removal")


def test_failover_and_breaker(tmp_path, daemon_factory, peer):
    dead = free_port()
    p = peer()
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        ("first", dead), ("second", p.port),
        queue='retry = ( "1s" ); breaker_failures = 2; '
              'breaker_backoff = "3s";'))
    for i in range(3):
        send_raw(d.port, "a@example.org", ["b%d@example.org" % i],
                 b"Subject: %d\r\n\r\nx\r\n" % i)
    wait_until(lambda: len(p.messages()) == 3, what="failover delivery")
    d.wait_for("event=failover")
    d.wait_for("event=breaker-open upstream=first")
    # The first upstream comes back: after the backoff a probe finds it.
    back = peer(port=dead)
    deadline = time.monotonic() + 45
    n = 0
    while not back.messages():
        assert time.monotonic() < deadline, "first upstream never retried"
        send_raw(d.port, "a@example.org", ["again%d@example.org" % n],
                 b"\r\nx\r\n")
        n += 1
        time.sleep(1)
    d.wait_for("event=breaker-closed upstream=first")


def test_auto_never_sends_in_clear_after_starttls_refused(
        tmp_path, daemon_factory, peer, pki):
    """security "auto" and a server that offers STARTTLS, then answers it
    454: the message waits with that reason; neither MAIL nor the body
    goes out in plain text."""
    transactions = tmp_path / "transactions"
    p = peer("starttls", extra=["--starttls-refuse", "--transactions",
                                str(transactions)])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        ("up", p.port), queue='retry = ( "1h" );').replace(
            'security = "none";', 'security = "auto"; tls = { ca_file = '
            '"%s"; };' % (pki / "ca.pem")))
    send_raw(d.port, "a@example.org", ["b@example.org"],
             b"Subject: secret\r\n\r\nx\r\n")
    d.wait_for("event=deferred")
    wait_until(lambda: spool_messages(d.spool)[0][0]["attempts"] == "1",
               what="the saved attempt")
    env, _ = spool_messages(d.spool)[0]
    assert env["rcpt.state"] == ["deferred"]
    assert "STARTTLS refused: 454 4.7.0" in env["rcpt.error"][0]
    assert p.messages() == []
    assert not transactions.exists()


def batch_peer(peer, tmp_path, limit, extra=()):
    """aiosmtpd taking 'limit' recipients per transaction (452 4.5.3 to
    the rest), logging its sessions (one EHLO per connection) and each
    MAIL; returns the peer and a function returning the number of
    sessions and the MAIL lines."""
    sessions, transactions = tmp_path / "sessions", tmp_path / "mails"
    p = peer(extra=["--rcpt-limit", str(limit), "--sessions",
                    str(sessions), "--transactions", str(transactions),
                    *extra])

    def lines(path):
        return path.read_text().splitlines() if path.exists() else []
    return p, lambda: (len(lines(sessions)), lines(transactions))


def delivered_rcpts(p):
    return sorted(r for m in p.messages() for r in envelope_of(m)[1]
                  if envelope_of(m)[0] != "<>")


def test_too_many_recipients_go_in_the_next_transaction_at_once(
        tmp_path, daemon_factory, peer):
    """An upstream that takes 10 recipients per transaction: the other 15
    of 25 follow in two more transactions on the same connection, not
    after a retry delay (an hour here)."""
    p, count = batch_peer(peer, tmp_path, 10)
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        ("up", p.port), queue='retry = ( "1h" );'))
    rcpts = ["r%02d@example.org" % i for i in range(25)]
    send_raw(d.port, "a@example.org", rcpts, b"Subject: many\r\n\r\nx\r\n")
    wait_until(lambda: spool_messages(d.spool) == [], what="all 25 "
               "delivered without a retry")
    assert delivered_rcpts(p) == rcpts
    assert sorted(len(envelope_of(m)[1]) for m in p.messages()) == \
        [5, 10, 10]
    assert all(b"Subject: many\r\n\r\nx\r\n" in m for m in p.messages())
    # One connection, three transactions.
    assert count() == (1, ["MAIL a@example.org"] * 3)
    assert not [l for l in d.lines if "event=deferred" in l or
                "event=retry" in l]


def test_next_transaction_results_are_per_recipient(
        tmp_path, daemon_factory, peer):
    """Limit 2, five recipients, the first data refused (451) and r3
    unknown (550): r0 and r1 wait, r3 bounces, the rest are delivered."""
    p, count = batch_peer(peer, tmp_path, 2, ["--defer-data", "1",
                                              "--reject", "r3@example.org"])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        ("up", p.port), queue='retry = ( "1h" );'))
    rcpts = ["r%d@example.org" % i for i in range(5)]
    send_raw(d.port, "a@example.org", rcpts, b"Subject: mixed\r\n\r\nx\r\n")
    wait_until(lambda: len(p.messages()) == 2, what="the second batch "
               "and the bounce")
    wait_until(lambda: spool_messages(d.spool) and
               spool_messages(d.spool)[0][0]["attempts"] == "1",
               what="the saved attempt")
    env = [e for e, _ in spool_messages(d.spool)
           if e["sender"] == "a@example.org"][0]
    assert env["rcpt"] == rcpts
    assert env["rcpt.state"] == ["deferred", "deferred", "delivered",
                                 "failed", "delivered"]
    assert delivered_rcpts(p) == ["r2@example.org", "r4@example.org"]
    bounce = [m for m in p.messages() if envelope_of(m)[0] == "<>"][0]
    assert b"Final-Recipient: rfc822; r3@example.org" in bounce
    assert b"Status: 5.1.1" in bounce
    assert count()[1].count("MAIL a@example.org") == 2


def test_total_timeout_in_a_later_transaction_keeps_earlier_results(
        tmp_path, daemon_factory, peer):
    """timeouts.total bounds the whole attempt, all transactions: when it
    ends one mid-way, recipients an earlier transaction delivered stay
    delivered and only the others wait."""
    p, count = batch_peer(peer, tmp_path, 1, ["--slow-data", "2"])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        ("up", p.port), queue='retry = ( "1h" );').replace(
            'command = "10s";', 'command = "10s"; total = "5s";'))
    rcpts = ["r%d@example.org" % i for i in range(5)]
    send_raw(d.port, "a@example.org", rcpts, b"\r\nx\r\n")
    d.wait_for("event=attempt-timeout", timeout=30)
    wait_until(lambda: spool_messages(d.spool) and
               spool_messages(d.spool)[0][0]["attempts"] == "1",
               what="the saved attempt")
    env, _ = spool_messages(d.spool)[0]
    got = delivered_rcpts(p)
    assert len(count()[1]) >= 2 and got, (count(), got)
    assert [r for r, st in zip(env["rcpt"], env["rcpt.state"])
            if st == "delivered"] == got
    assert "deferred" in env["rcpt.state"]


@pytest.mark.skipif(not os.path.exists(SMTP_SOURCE),
                    reason="smtp-source missing")
def test_connection_reuse(tmp_path, daemon_factory, peer):
    sessions = tmp_path / "sessions"
    p = peer(extra=["--sessions", str(sessions)])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        ("up", p.port), queue='retry = ( "1s" ); concurrency = 2;'))
    r = subprocess.run([SMTP_SOURCE, "-c", "-s", "5", "-m", "60", "-l",
                        "1024", "-f", "a@example.org", "-t",
                        "b@example.org", "127.0.0.1:%d" % d.port],
                       capture_output=True, timeout=60)
    assert r.returncode == 0
    wait_until(lambda: len(p.messages()) == 60, timeout=60,
               what="60 deliveries")
    count = len(sessions.read_text().splitlines())
    print("60 messages delivered over %d upstream sessions" % count)
    assert count < 60


@pytest.mark.skipif(not os.path.exists(POSTERN_SENDMAIL),
                    reason="postern-sendmail not built")
def test_sendmail_drop_while_down_is_delivered_at_start(
        tmp_path, daemon_factory, peer):
    p = peer()
    d = start_posternd(daemon_factory, tmp_path, relay_conf(("up", p.port)))
    d.stop()
    r = subprocess.run([POSTERN_SENDMAIL, "-C", d.conf, "-f",
                        "cron@example.org", "root@example.org"],
                       input=b"Subject: from cron\n\nall good\n",
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert len(spool_messages(d.spool)) == 1
    d2 = daemon_factory(d.conf)
    d2.wait_for("event=ready")
    wait_until(lambda: len(p.messages()) == 1, what="delivery after start")
    assert b"Subject: from cron" in p.messages()[0]


@pytest.mark.skipif(not os.path.exists(POSTERN_SENDMAIL),
                    reason="postern-sendmail not built")
def test_sendmail_drop_while_running_is_picked_up(tmp_path, daemon_factory,
                                                  peer):
    p = peer()
    d = start_posternd(daemon_factory, tmp_path, relay_conf(("up", p.port)))
    r = subprocess.run([POSTERN_SENDMAIL, "-C", d.conf, "-f",
                        "app@example.org", "ops@example.org"],
                       input=b"Subject: now\n\nhello\n", capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: len(p.messages()) == 1, what="pickup and delivery")
    d.wait_for("event=picked-up")


def test_sigterm_mid_delivery_keeps_the_message(tmp_path, daemon_factory,
                                                peer):
    port = free_port()
    peer(port=port, extra=["--slow-data", "60"])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(("up", port)))
    send_raw(d.port, "a@example.org", ["b@example.org"], b"\r\nx\r\n")
    time.sleep(1.0)
    assert d.stop(timeout=30) == 0
    d.wait_for("event=stop-forced")
    assert len(spool_messages(d.spool)) == 1
    env, _ = spool_messages(d.spool)[0]
    assert env["rcpt.state"] == ["pending"]


def test_flush_and_status_through_the_control_socket(tmp_path,
                                                     daemon_factory, peer):
    from conftest import POSTERN
    import json
    port = free_port()
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        ("up", port), queue='retry = ( "1h" );'))
    send_raw(d.port, "a@example.org", ["b@example.org"], b"\r\nx\r\n")
    d.wait_for("event=retry")
    st = json.loads(subprocess.run(
        [POSTERN, "status", "-c", d.conf, "--json"], capture_output=True,
        text=True, timeout=10, check=True).stdout)
    assert st["queue"]["total"] == 1 and st["queue"]["due"] == 0
    assert st["upstreams"][0]["name"] == "up"
    assert "connection refused" in st["upstreams"][0]["last_error"]
    text = subprocess.run([POSTERN, "status", "-c", d.conf],
                          capture_output=True, text=True, timeout=10).stdout
    assert "queue: 1 message(s)" in text and "upstream up:" in text
    # An id that is not queued is said to be so, with a failing status.
    r = subprocess.run([POSTERN, "flush", "-c", d.conf, "0123456789abcdef"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1, r
    assert "no such message: 0123456789abcdef" in r.stderr
    # The upstream is back: a flush sends the mail now, not in an hour.
    p = peer(port=port)
    r = subprocess.run([POSTERN, "flush", "-c", d.conf],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "1 message(s) due now" in r.stdout
    wait_until(lambda: len(p.messages()) == 1, what="flushed delivery")
    if os.path.exists(POSTERN_SENDMAIL):
        r = subprocess.run([POSTERN_SENDMAIL, "-C", d.conf, "-q"],
                           capture_output=True, timeout=10)
        assert r.returncode == 0
    d.stop()
    r = subprocess.run([POSTERN, "status", "-c", d.conf],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "posternd is not running" in r.stderr


def test_flush_during_an_outage_keeps_the_backoff(tmp_path, daemon_factory):
    """The upstream is down; a flush tries the message at once, and when
    that fails too, the message goes back to the time it had: the flushed
    attempt neither counts for the backoff nor pushes the next try out."""
    from conftest import POSTERN
    import json
    import re
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        ("up", free_port()), queue='retry = ( "1h", "4h" );'))
    send_raw(d.port, "a@example.org", ["b@example.org"], b"\r\nx\r\n")
    first = d.wait_for("event=retry")
    assert "attempts=1 " in d.lines[first], d.lines[first]

    def delivering():
        return json.loads(subprocess.run(
            [POSTERN, "status", "-c", d.conf, "--json"], capture_output=True,
            text=True, timeout=10, check=True).stdout)["queue"]["delivering"]

    # Its result rides the next group flush: back in the queue after it.
    wait_until(lambda: delivering() == 0, what="the result saved")
    r = subprocess.run([POSTERN, "flush", "-c", d.conf],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "1 message(s) due now" in r.stdout, r
    second = d.wait_for("event=retry", start=first + 1)
    line = d.lines[second]
    assert "attempts=1 " in line and "early=yes" in line, line
    # Still about an hour away (1h, 20% jitter), not the 4h step.
    wait = int(re.search(r"next=\+(\d+)s", line).group(1))
    assert 2800 <= wait <= 4400, line
    # The very time it had: the first attempt's, seconds ago.
    before = int(re.search(r"next=\+(\d+)s", d.lines[first]).group(1))
    assert 0 <= before - wait <= 10, (d.lines[first], line)
    env = spool_messages(d.spool)[0][0]
    assert env["attempts"] == "1"


def test_notify_success_and_never(tmp_path, daemon_factory, peer):
    """aiosmtpd offers no DSN: NOTIFY=SUCCESS gets a "relayed" report from
    postern itself (RFC 3461 6.2.4); NOTIFY=NEVER silences a failure."""
    from conftest import smtp_chat
    p = peer(extra=["--reject", "gone@example.org"])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(("up", p.port)))
    out = smtp_chat(d.port, [
        "EHLO me.test", "MAIL FROM:<a@example.org> RET=HDRS",
        "RCPT TO:<ok@example.org> NOTIFY=SUCCESS",
        "RCPT TO:<gone@example.org> NOTIFY=NEVER",
        "DATA", "Subject: tell me\r\n\r\nbody\r\n.", "QUIT"])
    assert out[6].startswith("250 2.0.0"), out
    wait_until(lambda: len(p.messages()) == 2, what="message and report")
    reports = [m for m in p.messages() if envelope_of(m)[0] == "<>"]
    assert len(reports) == 1
    text = reports[0].decode()
    assert "Subject: Successful Mail Delivery Report" in text
    assert "Final-Recipient: rfc822; ok@example.org" in text
    assert "Action: relayed" in text and "Status: 2.0.0" in text
    assert "gone@example.org" not in text
    assert "text/rfc822-headers" in text
    d.wait_for("event=failed")


def test_rate_limit_paces_deliveries(tmp_path, daemon_factory, peer):
    """rate = "2/s": a burst of two, then two a second; mail waits, it is
    not refused.  Only a lower bound on time is asserted: a slow machine
    can only make it slower."""
    p = peer()
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        ("up", p.port)).replace('security = "none";',
                                'security = "none"; rate = "2/s";'))
    start = time.monotonic()
    for i in range(8):
        send_raw(d.port, "a@example.org", ["r%d@example.org" % i],
                 b"\r\nx\r\n")
    wait_until(lambda: len(p.messages()) == 8, timeout=30,
               what="paced deliveries")
    elapsed = time.monotonic() - start
    print("8 messages at 2/s took %.2fs" % elapsed)
    assert elapsed >= 2.5
    wait_until(lambda: spool_messages(d.spool) == [], what="queue empty")


def test_too_big_for_the_upstream_bounces_at_once(tmp_path, daemon_factory,
                                                  peer):
    """The upstream announces SIZE 2000: a larger message fails at once
    (5.3.4, decided from its EHLO before MAIL) instead of being retried
    until it expires."""
    p = peer(extra=["--size", "2000"])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(("up", p.port)))
    send_raw(d.port, "a@example.org", ["b@example.org"],
             b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 100)
    d.wait_for("event=failed")
    wait_until(lambda: len(p.messages()) == 1, what="the bounce")
    frm, rcpts = envelope_of(p.messages()[0])
    assert frm == "<>" and rcpts == ["a@example.org"]
    assert b"Status: 5.3.4" in p.messages()[0]
    wait_until(lambda: spool_messages(d.spool) == [], what="queue empty")


def test_total_timeout_bounds_an_attempt(tmp_path, daemon_factory, peer):
    """Every wait has its own timeout (dot: 1m here), and timeouts.total
    bounds the whole attempt: a server slow to answer the final dot
    costs 2 s, and the message is deferred, not lost."""
    p = peer(extra=["--slow-data", "30"])
    d = start_posternd(daemon_factory, tmp_path, relay_conf(
        ("up", p.port)).replace('command = "10s";',
                                'command = "10s"; dot = "1m"; '
                                'total = "2s";'))
    send_raw(d.port, "a@example.org", ["b@example.org"], b"\r\nx\r\n")
    d.wait_for("event=attempt-timeout", timeout=15)
    d.wait_for("event=deferred")
    wait_until(lambda: spool_messages(d.spool) and
               spool_messages(d.spool)[0][0]["attempts"] == "1",
               what="the saved attempt")
    env, _ = spool_messages(d.spool)[0]
    assert env["rcpt.state"] == ["deferred"]
    assert "timeouts.total (2s)" in env["rcpt.error"][0]
