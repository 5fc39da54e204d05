"""postern-sendmail: messages from programs straight into the spool, with
and without a running posternd; -bs spoken by swaks; mailq."""

import os
import re
import subprocess
import time

import pytest

from conftest import BUILD, POSTERN, POSTERND, POSTERN_SENDMAIL, free_port, \
    smtp_chat, spool_messages, start_posternd

SENDMAIL = os.path.join(BUILD, "daemon", "postern-sendmail")
SWAKS = "/usr/bin/swaks"

# aliases_file = "": the machine's /etc/aliases stays out of the tests.
CONF = '''hostname = "relay.test";
spool_dir = "%s";
default_domain = "example.org";
aliases = { root = "admin@example.org"; ops = ( "root", "oncall" ); };
aliases_file = "";
%s'''

# No upstream accepts: a daemon that tries to deliver only defers.
DEAD_UPSTREAM = ('upstreams = ( { name = "dead"; host = "127.0.0.1"; '
                 'port = %d; security = "none"; } );\n')


def init_spool(conf):
    """What the package or a first start of posternd does: sendmail never
    creates the spool's layout itself."""
    r = subprocess.run([POSTERN, "init-spool", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


@pytest.fixture
def conf(tmp_path):
    """A configuration whose spool under tmp_path is set up; no daemon
    runs."""
    path = tmp_path / "postern.conf"
    path.write_text(CONF % (tmp_path / "spool", ""))
    init_spool(path)
    return str(path)


def sendmail(conf, *args, data=b"", timeout=30, argv0=None):
    if isinstance(data, str):
        data = data.encode()
    return subprocess.run([argv0 or SENDMAIL, "-C", conf, *args],
                          input=data, capture_output=True, timeout=timeout)


def spool_of(conf):
    with open(conf) as f:
        return re.search(r'spool_dir = "([^"]*)"', f.read()).group(1)


def only_message(conf):
    msgs = spool_messages(spool_of(conf))
    assert len(msgs) == 1, msgs
    return msgs[0]


def headers_of(body):
    head = body.split(b"\r\n\r\n", 1)[0]
    return head.decode("utf-8", "replace").split("\r\n")


def assert_clean_crlf(body):
    """Every line ends in CRLF; no bare CR or LF anywhere."""
    assert body.endswith(b"\r\n")
    assert b"\r" not in body.replace(b"\r\n", b"")
    assert b"\n" not in body.replace(b"\r\n", b"")


def test_message_is_queued_with_no_daemon(conf):
    r = sendmail(conf, "bob@example.net",
                 data="Subject: hello\n\nline one\nline two\n")
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    env, body = only_message(conf)
    assert env["sender"] == "root@example.org"
    assert env["rcpt"] == ["bob@example.net"]
    assert env["rcpt.state"] == ["pending"]
    assert env["origin"] == "sendmail uid=%d" % os.getuid()
    assert int(env["size"]) == len(body)
    assert_clean_crlf(body)
    head = headers_of(body)
    assert head[0] == "Received: by relay.test (postern, from userid %d)" \
        % os.getuid()
    assert head[1].startswith("\tid %s; " % env["id"])
    assert "Subject: hello" in head
    assert re.search(r"^Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d "
                     r"[+-]\d{4}$", "\n".join(head), re.M)
    assert re.search(r"^Message-ID: <%s\.[0-9a-f]{8}@relay\.test>$"
                     % env["id"], "\n".join(head), re.M)
    assert [h for h in head if h.startswith("From: ")] == \
        ["From: root <root@example.org>"]
    assert body.endswith(b"\r\n\r\nline one\r\nline two\r\n")
    # Nothing was left behind in tmp/.
    assert os.listdir(os.path.join(spool_of(conf), "tmp")) == []


def test_present_fields_are_not_added_again(conf):
    msg = ("From: Alice <alice@example.net>\n"
           "Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
           "Message-ID: <x@example.net>\n"
           "Subject: s\n\nbody\n")
    r = sendmail(conf, "bob@example.net", data=msg)
    assert r.returncode == 0, r.stderr
    _, body = only_message(conf)
    head = headers_of(body)
    assert head[2:] == ["From: Alice <alice@example.net>",
                        "Date: Mon, 1 Jan 2024 00:00:00 +0000",
                        "Message-ID: <x@example.net>", "Subject: s"]


def test_crlf_input_and_bare_cr_become_crlf_lines(conf):
    r = sendmail(conf, "bob@example.net",
                 data=b"Subject: crlf\r\n\r\na\r\nb\rc\r\rd\n\re")
    assert r.returncode == 0, r.stderr
    _, body = only_message(conf)
    assert_clean_crlf(body)
    # A lone CR is a line end (documented), and a last line is ended.
    assert body.endswith(b"\r\n\r\na\r\nb\r\nc\r\n\r\nd\r\n\r\ne\r\n")


def test_message_without_header_section_gets_a_blank_line(conf):
    r = sendmail(conf, "bob@example.net", data="just text, no fields\n")
    assert r.returncode == 0, r.stderr
    _, body = only_message(conf)
    assert body.endswith(b">\r\n\r\njust text, no fields\r\n")


def test_mbox_from_line_is_dropped(conf):
    r = sendmail(conf, "bob@example.net",
                 data="From alice Mon Jan  1 00:00:00 2024\nSubject: x\n\n"
                      "From here on\n")
    assert r.returncode == 0, r.stderr
    _, body = only_message(conf)
    assert b"From alice" not in body
    assert b"\r\nSubject: x\r\n" in body
    assert body.endswith(b"\r\n\r\nFrom here on\r\n")


def test_lone_dot_ends_the_message_without_i(conf):
    r = sendmail(conf, "bob@example.net",
                 data="Subject: d\n\nbefore\n.\nafter\n")
    assert r.returncode == 0, r.stderr
    _, body = only_message(conf)
    assert body.endswith(b"\r\nbefore\r\n")
    assert b"after" not in body


@pytest.mark.parametrize("flag", ["-i", "-oi"])
def test_i_keeps_lone_dot_lines(conf, flag):
    r = sendmail(conf, flag, "bob@example.net",
                 data="Subject: d\n\nbefore\n.\n..\nafter\n")
    assert r.returncode == 0, r.stderr
    _, body = only_message(conf)
    # The spool holds the message as written; dots are stuffed on delivery.
    assert body.endswith(b"\r\nbefore\r\n.\r\n..\r\nafter\r\n")


def test_t_reads_to_cc_bcc_and_removes_bcc(conf):
    msg = ("To: Joe Example <joe@example.net>, \"Doe, Jane\" "
           "<jane@example.net>\n"
           "Cc: team: a@example.net, b@example.net (B);,\n"
           "  root\n"
           "Bcc: hidden@example.net\n"
           "Subject: t\n\nbody\n")
    r = sendmail(conf, "-t", "extra@example.net", data=msg)
    assert r.returncode == 0, r.stderr
    env, body = only_message(conf)
    assert env["rcpt"] == ["extra@example.net", "joe@example.net",
                           "jane@example.net", "a@example.net",
                           "b@example.net", "admin@example.org",
                           "hidden@example.net"]
    assert b"hidden" not in body
    assert b"Bcc" not in body
    assert b"\r\nCc: team: a@example.net, b@example.net (B);,\r\n  " \
        b"root@example.org\r\n" in body


@pytest.mark.parametrize("to, want", [
    ("a@example.net", ["a@example.net"]),
    ("<a@example.net>", ["a@example.net"]),
    ("a@example.net (Alice), ,b@example.net",
     ["a@example.net", "b@example.net"]),
    ('"quoted, name" <q@example.net>', ["q@example.net"]),
    ('"john doe"@example.net', ['"john doe"@example.net']),
    ("<@relay.example.net:r@example.net>", ["r@example.net"]),
    ("undisclosed-recipients:;", []),
    ("list: x@example.net, y@example.net;, z@example.net",
     ["x@example.net", "y@example.net", "z@example.net"]),
    ("A (comment (nested)) <a@example.net>", ["a@example.net"]),
    ("user@[127.0.0.1]", ["user@[127.0.0.1]"]),
    ("ops", ["admin@example.org", "oncall@example.org"]),
    ("A@Example.net, a@example.NET", ["A@Example.net"]),
])
def test_t_address_list_forms(conf, to, want):
    r = sendmail(conf, "-t", "-f", "s@example.org",
                 data="To: %s\nCc: c@example.net\n\nx\n" % to)
    assert r.returncode == 0, r.stderr
    env, _ = only_message(conf)
    assert env["rcpt"] == want + ["c@example.net"]


@pytest.mark.parametrize("to, why", [
    ("Joe Admin", "words without an <address>"),
    ("<a@example.net", '"<" without ">"'),
    ('"open quote@example.net', "unterminated quoted string"),
    ("a@@example.net", "bad recipient address"),
    ("x (unclosed comment", "unterminated comment"),
])
def test_t_bad_address_is_refused(conf, to, why):
    r = sendmail(conf, "-t", data="To: %s\n\nx\n" % to)
    assert r.returncode == 65
    err = r.stderr.decode()
    assert err.startswith("sendmail: bad recipient address ")
    assert "in the To: field" in err and why in err
    assert err.count("\n") == 1
    assert spool_messages(spool_of(conf)) == []


def test_t_uses_resent_fields_when_present(conf):
    msg = ("To: old@example.net\nResent-To: new@example.net\n"
           "Resent-Bcc: secret@example.net\n\nx\n")
    r = sendmail(conf, "-t", data=msg)
    assert r.returncode == 0, r.stderr
    env, body = only_message(conf)
    assert env["rcpt"] == ["new@example.net", "secret@example.net"]
    assert b"secret" not in body and b"\r\nTo: old@example.net\r\n" in body


def test_t_without_any_recipient_is_65(conf):
    r = sendmail(conf, "-t", data="Subject: nobody\n\nx\n")
    assert r.returncode == 65
    assert r.stderr == (b"sendmail: no recipients (none in To:, Cc: or Bcc: "
                        b"and none on the command line)\n")
    assert spool_messages(spool_of(conf)) == []


def test_no_recipient_argument_is_65(conf):
    r = sendmail(conf, data="x\n")
    assert r.returncode == 65
    assert r.stderr.startswith(b"sendmail: no recipients given")


def test_bare_names_go_through_aliases_and_default_domain(conf):
    r = sendmail(conf, "root", "www-data", "Postmaster@example.net",
                 data="x\n")
    assert r.returncode == 0, r.stderr
    env, _ = only_message(conf)
    assert env["rcpt"] == ["admin@example.org", "www-data@example.org",
                           "Postmaster@example.net"]


@pytest.mark.parametrize("args, sender, from_field", [
    (["-f", "alice@example.net"], "alice@example.net",
     "From: alice@example.net"),
    (["-falice@example.net"], "alice@example.net",
     "From: alice@example.net"),
    (["-r", "<bounce@example.net>"], "bounce@example.net",
     "From: bounce@example.net"),
    (["-f", "daemon"], "daemon@example.org", "From: daemon@example.org"),
    (["-f", "<>"], "", "From: root <root@example.org>"),
    (["-f", "a@example.net", "-F", "Alice Example"], "a@example.net",
     "From: Alice Example <a@example.net>"),
    (["-F", "Smith, J. (ops)"], "root@example.org",
     'From: "Smith, J. (ops)" <root@example.org>'),
    (["-F", "Jörg"], "root@example.org",
     "From: =?UTF-8?B?SsO2cmc=?= <root@example.org>"),
])
def test_sender_and_from_field(conf, args, sender, from_field):
    r = sendmail(conf, *args, "bob@example.net", data="Subject: s\n\nx\n")
    assert r.returncode == 0, r.stderr
    env, body = only_message(conf)
    assert env["sender"] == sender
    assert from_field in headers_of(body)


def test_bad_sender_is_65(conf):
    r = sendmail(conf, "-f", "a b@example.net", "bob@example.net",
                 data="x\n")
    assert r.returncode == 65
    assert r.stderr.startswith(b'sendmail: bad sender address "a b@')


def test_options_after_recipients_and_double_dash(conf):
    r = sendmail(conf, "bob@example.net", "-oi", "-f", "a@example.net",
                 "--", "carol@example.net", data="x\n.\ny\n")
    assert r.returncode == 0, r.stderr
    env, body = only_message(conf)
    assert env["sender"] == "a@example.net"
    assert env["rcpt"] == ["bob@example.net", "carol@example.net"]
    assert body.endswith(b"x\r\n.\r\ny\r\n")


def test_compatibility_options_are_accepted(conf):
    r = sendmail(conf, "-oem", "-odb", "-oQ/tmp", "-U", "-m", "-G",
                 "-B", "8BITMIME", "-L", "tag", "-h", "5", "-O", "X=Y",
                 "bob@example.net", data="x\n")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args, text", [
    (["-z"], b"sendmail: unknown option -z\n"),
    (["-f"], b"sendmail: option -f needs a value\n"),
    (["-bd"], b"sendmail: -bd is not supported: posternd is the daemon\n"),
    (["-bt"], b"sendmail: -bt is not supported\n"),
    (["-N", "sometimes"], b'sendmail: -N "sometimes"'),
    (["-R", "all"], b'sendmail: -R "all"'),
])
def test_bad_flags_are_64(conf, args, text):
    r = sendmail(conf, "bob@example.net", *args, data="x\n")
    assert r.returncode == 64
    assert r.stderr.startswith(text)
    assert spool_messages(spool_of(conf)) == []


def test_dsn_flags_reach_the_envelope(conf):
    r = sendmail(conf, "-N", "failure,delay", "-R", "hdrs", "-V", "id+1",
                 "bob@example.net", data="x\n")
    assert r.returncode == 0, r.stderr
    env, _ = only_message(conf)
    assert env["rcpt.notify"] == ["failure,delay"]
    assert env["ret"] == "hdrs"
    assert env["envid"] == "id+2B1"   # xtext, as SMTP carries it


def test_eight_bit_body_is_flagged(conf):
    r = sendmail(conf, "bob@example.net", data="Subject: x\n\nGrüße\n")
    assert r.returncode == 0, r.stderr
    env, body = only_message(conf)
    assert env["body"] == "8bitmime"
    assert "Grüße".encode() in body


def test_bad_config_is_78(tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("limits = { sesions = 4; };\n")
    r = sendmail(str(bad), "bob@example.net", data="x\n")
    assert r.returncode == 78
    assert r.stderr.decode().startswith("sendmail: %s:1: limits.sesions: "
                                        % bad)


def test_config_through_environment(tmp_path, conf):
    r = subprocess.run([SENDMAIL, "bob@example.net"], input=b"x\n",
                       capture_output=True, timeout=30,
                       env=dict(os.environ, POSTERN_CONFIG=conf))
    assert r.returncode == 0, r.stderr
    assert len(spool_messages(spool_of(conf))) == 1


def test_verbose_names_the_queue_id(conf):
    r = sendmail(conf, "-v", "bob@example.net", data="x\n")
    assert r.returncode == 0
    env, _ = only_message(conf)
    assert r.stderr == ("sendmail: queued as %s (1 recipient)\n"
                        % env["id"]).encode()


def test_long_lines_are_broken_at_998(conf):
    words = " ".join("w%04d@example.net" % i for i in range(80))
    body_line = "x" * 2500
    r = sendmail(conf, "-f", "a@example.net", "b@example.net",
                 data="X-Long: %s\nX-Solid: %s\n\n%s\n" %
                 (words, "y" * 1200, body_line))
    assert r.returncode == 0, r.stderr
    _, body = only_message(conf)
    assert_clean_crlf(body)
    assert max(len(line) for line in body.split(b"\r\n")) <= 998
    head, text = body.split(b"\r\n\r\n", 1)
    # Folded at white space: unfolding gives the field back unchanged.
    unfolded = re.sub(rb"\r\n(?=[ \t])", b"", head)
    assert b"X-Long: " + words.encode() + b"\r\n" in unfolded + b"\r\n"
    # No white space to fold at: broken with CRLF SP.
    assert b"X-Solid: " + b"y" * 989 + b"\r\n " + b"y" * 211 + b"\r\n" \
        in head + b"\r\n"
    assert text == b"x" * 998 + b"\r\n" + b"x" * 998 + b"\r\n" + \
        b"x" * 504 + b"\r\n"


def test_nul_byte_is_refused(conf):
    r = sendmail(conf, "bob@example.net", data=b"Subject: x\n\na\0b\n")
    assert r.returncode == 65
    assert r.stderr == (b"sendmail: line 3 holds a NUL byte; a message is "
                        b"text (RFC 5322)\n")
    assert spool_messages(spool_of(conf)) == []
    assert os.listdir(os.path.join(spool_of(conf), "tmp")) == []


def test_message_over_the_size_limit_is_65(tmp_path):
    conf = tmp_path / "postern.conf"
    conf.write_text(CONF % (tmp_path / "spool",
                            "limits = { message_size = 65536; };\n"))
    init_spool(conf)
    r = sendmail(str(conf), "bob@example.net",
                 data="Subject: big\n\n" + ("z" * 99 + "\n") * 2000)
    assert r.returncode == 65
    assert r.stderr == (b"sendmail: message too large: the limit is 65536 "
                        b"bytes (limits.message_size)\n")
    assert spool_messages(str(tmp_path / "spool")) == []
    assert os.listdir(str(tmp_path / "spool" / "tmp")) == []


def test_large_message_streams_to_the_spool(conf):
    line = b"0123456789" * 9 + b"\n"
    data = b"Subject: large\n\n" + line * 60000   # 5.4 MB
    r = sendmail(conf, "bob@example.net", data=data)
    assert r.returncode == 0, r.stderr
    env, body = only_message(conf)
    assert body.endswith(line.replace(b"\n", b"\r\n") * 60000)
    assert int(env["size"]) == len(body)


@pytest.fixture
def full_tmpfs(tmp_path):
    """A 64 KiB tmpfs: the spool fits, a 200 KB message does not."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
                        str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % r.stderr.decode())
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_full_spool_is_75_and_leaves_nothing(tmp_path, full_tmpfs):
    conf = tmp_path / "postern.conf"
    spool = full_tmpfs / "spool"
    conf.write_text(CONF % (spool, ""))
    init_spool(conf)
    r = sendmail(str(conf), "bob@example.net",
                 data="Subject: big\n\n" + ("z" * 99 + "\n") * 2000)
    assert r.returncode == 75, r.stderr
    err = r.stderr.decode()
    assert err.startswith("sendmail: ") and "No space left on device" in err
    assert err.endswith("; nothing was queued\n") and err.count("\n") == 1
    assert os.listdir(str(spool / "tmp")) == []
    assert spool_messages(str(spool)) == []
    # A small message still fits afterwards.
    r = sendmail(str(conf), "bob@example.net", data="Subject: small\n\nx\n")
    assert r.returncode == 0, r.stderr
    assert len(spool_messages(str(spool))) == 1


def test_spool_that_cannot_be_opened_is_75(tmp_path):
    conf = tmp_path / "postern.conf"
    (tmp_path / "file").write_text("not a directory")
    conf.write_text(CONF % (tmp_path / "file", ""))
    r = sendmail(str(conf), "bob@example.net", data="x\n")
    assert r.returncode == 75
    assert r.stderr.startswith(b"sendmail: cannot open the spool: ")


def test_sendmail_while_posternd_runs(tmp_path, daemon_factory):
    d = start_posternd(daemon_factory, tmp_path,
                       'default_domain = "example.org";\n' +
                       DEAD_UPSTREAM % free_port())
    r = sendmail(d.conf, "-f", "a@example.net", "b@example.net",
                 data="Subject: via sendmail\n\nx\n")
    assert r.returncode == 0, r.stderr
    out = smtp_chat(d.port, ["EHLO c.test", "MAIL FROM:<c@example.net>",
                             "RCPT TO:<d@example.net>", "DATA",
                             "Subject: via smtp\r\n\r\ny\r\n.", "QUIT"])
    assert out[5].startswith("250 2.0.0 Ok: queued as"), out
    msgs = spool_messages(d.spool)
    assert sorted(m[0]["sender"] for m in msgs) == \
        ["a@example.net", "c@example.net"]
    assert d.proc.poll() is None
    # -q asks the running daemon for a queue run.
    r = sendmail(d.conf, "-q", "-v")
    assert r.returncode == 0
    assert b"queue run started" in r.stderr
    d.wait_for("event=flush")


def test_q_without_daemon(conf):
    assert sendmail(conf, "a@example.net", data="x\n").returncode == 0
    r = sendmail(conf, "-q")
    assert r.returncode == 0
    assert r.stderr.startswith(b"sendmail: posternd is not running on "
                               b"spool %s (no control socket at "
                               % spool_of(conf).encode())
    assert r.stderr.endswith(b"queued mail is delivered once it starts\n")


@pytest.mark.parametrize("how", ["-bp", "mailq"])
def test_mailq_lists_the_queue(tmp_path, conf, how):
    if how == "mailq":
        link = tmp_path / "mailq"
        link.symlink_to(os.path.abspath(SENDMAIL))
        run = lambda: sendmail(conf, argv0=str(link))   # noqa: E731
    else:
        run = lambda: sendmail(conf, "-bp")   # noqa: E731
    r = run()
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Mail queue is empty\n"
    assert sendmail(conf, "-f", "a@example.net", "root",
                    data="x\n").returncode == 0
    env, _ = only_message(conf)
    r = run()
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["ID", "ARRIVAL", "SIZE", "SENDER", "/",
                                "RECIPIENTS"]
    assert lines[1].startswith(env["id"] + "  ")
    assert lines[1].endswith("a@example.net")
    assert lines[2] == "    -> admin@example.org  pending"
    assert lines[3] == "-- 1 message, %s bytes" % env["size"]


@pytest.mark.skipif(not os.path.exists(SWAKS), reason="swaks missing")
def test_bs_session_with_swaks(conf):
    r = subprocess.run(
        [SWAKS, "--pipe", "%s -bs -C %s" % (SENDMAIL, conf),
         "--helo", "client.test", "--from", "alice@example.net",
         "--to", "bob@example.net,carol@example.net",
         "--header", "Subject: over -bs", "--body", "one\n.two\n"],
        capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<-  220 relay.test ESMTP postern (sendmail -bs)" in r.stdout
    m = re.search(r"250 2\.0\.0 Ok: queued as ([0-9a-f]{16})", r.stdout)
    assert m, r.stdout
    env, body = only_message(conf)
    assert env["id"] == m.group(1)
    assert env["sender"] == "alice@example.net"
    assert env["rcpt"] == ["bob@example.net", "carol@example.net"]
    assert env["origin"] == "sendmail -bs uid=%d" % os.getuid()
    assert_clean_crlf(body)
    assert body.startswith(b"Received: from client.test\r\n\tby relay.test "
                           b"(postern, from userid %d) with ESMTP id %s;\r\n"
                           % (os.getuid(), env["id"].encode()))
    # Dot-unstuffed; swaks's own Date: and Message-Id: are kept.
    assert b"\r\none\r\n.two\r\n" in body
    assert len(re.findall(rb"\r\nMessage-Id: ", body, re.I)) == 1
    assert len(re.findall(rb"\r\nDate: ", body)) == 1


def test_bs_session_sequence_errors_and_pipelining(conf):
    script = (b"MAIL FROM:<a@example.net>\r\n"
              b"EHLO c.test\r\n"
              b"DATA\r\n"
              b"MAIL FROM:<a@example.net>\r\n"
              b"DATA\r\n"
              b"RCPT TO:<b@example.net> NOTIFY=NEVER\r\n"
              b"RCPT TO:<postmaster>\r\n"
              b"DATA\r\n"
              b"Subject: pipelined\r\n\r\nbody\r\n..dot\r\n.\r\n"
              b"MAIL FROM:<> BODY=8BITMIME\r\n"
              b"RCPT TO:<c@example.net>\r\n"
              b"RSET\r\n"
              b"NOOP\r\n"
              b"QUIT\r\n")
    r = subprocess.run([SENDMAIL, "-C", conf, "-bs"], input=script,
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    replies = [line for line in r.stdout.decode().split("\r\n")
               if line and not line.startswith("250-")]
    codes = [line[:3] for line in replies]
    assert codes == ["220", "503", "250", "503", "250", "554", "250", "250",
                     "354", "250", "250", "250", "250", "250", "221"], \
        replies
    env, body = only_message(conf)
    # <postmaster> is the local one: aliases, then the default domain.
    assert env["rcpt"] == ["b@example.net", "postmaster@example.org"]
    assert env["rcpt.notify"] == ["never"]
    assert body.endswith(b"\r\n\r\nbody\r\n.dot\r\n")
    assert spool_messages(spool_of(conf))[0][0]["id"] in replies[9]


def test_bs_bare_lf_closes_the_session(conf):
    r = subprocess.run([SENDMAIL, "-C", conf, "-bs"],
                       input=b"EHLO c.test\nMAIL FROM:<a@example.net>\r\n",
                       capture_output=True, timeout=30)
    assert r.returncode == 0
    assert r.stdout.decode().split("\r\n")[1].startswith("521 5.5.2")
    assert spool_messages(spool_of(conf)) == []


def test_bs_client_gone_mid_data_queues_nothing(conf):
    r = subprocess.run([SENDMAIL, "-C", conf, "-bs"],
                       input=b"HELO c\r\nMAIL FROM:<a@example.net>\r\n"
                             b"RCPT TO:<b@example.net>\r\nDATA\r\n"
                             b"Subject: cut\r\n\r\npartial\r\n",
                       capture_output=True, timeout=30)
    assert r.returncode == 0
    assert spool_messages(spool_of(conf)) == []
    assert os.listdir(os.path.join(spool_of(conf), "tmp")) == []


def test_interrupted_sendmail_leaves_nothing(conf):
    p = subprocess.Popen([SENDMAIL, "-C", conf, "bob@example.net"],
                         stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(b"Subject: x\n\n" + b"y" * 400000)
    p.stdin.flush()
    time.sleep(0.3)
    p.terminate()
    _, err = p.communicate(timeout=10)
    assert p.returncode == 75
    assert err.startswith(b"sendmail: interrupted by signal 15")
    assert spool_messages(spool_of(conf)) == []
    assert os.listdir(os.path.join(spool_of(conf), "tmp")) == []


def test_recipient_limit_counts_distinct_addresses(tmp_path):
    conf = tmp_path / "postern.conf"
    conf.write_text(CONF % (tmp_path / "spool",
                            "limits = { recipients = 100; };\n"))
    init_spool(conf)
    rcpts = ["u%03d@example.net" % i for i in range(100)]
    # Duplicates (in any case) count once.
    to = ", ".join(rcpts + [r.upper() for r in rcpts])
    r = sendmail(str(conf), "-t", data="To: %s\n\nx\n" % to)
    assert r.returncode == 0, r.stderr
    env, _ = only_message(str(conf))
    assert env["rcpt"] == rcpts
    r = sendmail(str(conf), "-t", "one-more@example.net",
                 data="To: %s\n\nx\n" % to)
    assert r.returncode == 65
    assert r.stderr == (b"sendmail: too many recipients: the limit is 100 "
                        b"(limits.recipients)\n")
    assert len(spool_messages(str(tmp_path / "spool"))) == 1


def test_bare_names_in_address_fields_get_the_default_domain(conf):
    # What Debian's cron writes; smart hosts refuse a From: without domain.
    msg = ("From: root (Cron Daemon)\n"
           "To: root, \"Joe\" <joe>, x@example.net,\n"
           "  undisclosed-recipients:;\n"
           "Reply-To: Not An Address\n"
           "Cc: <@relay.example.net:bob>\n"
           "Subject: Cron <root@host> run-parts\n\nx\n")
    r = sendmail(conf, "-t", data=msg)
    assert r.returncode == 0, r.stderr
    env, body = only_message(conf)
    assert env["rcpt"] == ["admin@example.org", "joe@example.org",
                           "x@example.net", "bob@example.org"]
    head = headers_of(body)
    assert head[2:9] == [
        "From: root@example.org (Cron Daemon)",
        'To: root@example.org, "Joe" <joe@example.org>, x@example.net,',
        "  undisclosed-recipients:;",
        "Reply-To: Not An Address",
        "Cc: <@relay.example.net:bob@example.org>",
        "Subject: Cron <root@host> run-parts",
        head[8]]
    assert head[8].startswith("Date: ")


def test_setgid_sendmail_for_ordinary_users(tmp_path, daemon_factory):
    """The packaged setup: sendmail setgid to the spool's group, so that a
    user who cannot touch the spool otherwise still queues mail, and the
    daemon (here root, standing for user postern) delivers it.  The
    caller's environment and -C cannot point it elsewhere."""
    import shutil
    import grp
    from pathlib import Path
    if os.geteuid() != 0:
        pytest.skip("needs root to make a setgid copy")
    if "ASAN_OPTIONS" in os.environ:
        pytest.skip("LeakSanitizer cannot run in a setgid process")
    import tempfile
    gid = grp.getgrnam("mail").gr_gid
    # Somewhere user nobody can reach (pytest's own directory is 0700).
    tmp_path = Path(tempfile.mkdtemp(prefix="postern-setgid-"))
    tmp_path.chmod(0o755)
    try:
        run_setgid_case(tmp_path, daemon_factory, gid)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def run_setgid_case(tmp_path, daemon_factory, gid):
    import shutil
    spool = tmp_path / "spool"
    conf = tmp_path / "postern.conf"
    conf.write_text('hostname = "localhost";\nspool_dir = "%s";\n' % spool)
    conf.chmod(0o644)
    d = daemon_factory(str(conf), {"POSTERN_LISTEN": "127.0.0.1:%d"
                                   % free_port()})
    d.wait_for("event=ready")
    os.chown(spool, 0, gid)
    for sub in ("tmp", "log", "bodies", "incoming", "quarantine"):
        os.chown(spool / sub, 0, gid)
    assert oct((spool / "tmp").stat().st_mode & 0o7777) == "0o2770"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    bindir.chmod(0o755)
    prog = bindir / "sendmail"
    shutil.copy(POSTERN_SENDMAIL, prog)
    os.chown(prog, 0, gid)
    prog.chmod(0o2755)
    # The copy reads its configuration from the compiled-in path only:
    # put ours there inside a private mount namespace.
    help_text = subprocess.run([POSTERND, "--help"], capture_output=True,
                               text=True).stdout
    default = re.search(r"or (/\S+)\)", help_text).group(1)
    etc = os.path.dirname(default)
    r = subprocess.run(["unshare", "-m", "sh", "-c",
                        "mkdir -p %s && mount -t tmpfs tmpfs %s && cp %s "
                        "%s/postern.conf && exec setpriv --reuid=nobody "
                        "--regid=nogroup --clear-groups env "
                        "POSTERN_SPOOL_DIR=/nonexistent %s -f "
                        "nobody@example.org ops@example.org"
                        % (etc, etc, conf, etc, prog)],
                       input=b"Subject: from nobody\n\nhi\n",
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    msgs = spool_messages(str(spool))
    assert len(msgs) == 1
    env, body = msgs[0]
    assert env["origin"] == "sendmail uid=65534"
    assert b"Subject: from nobody" in body
    # Nobody but the spool's group may read it.
    drop = next((spool / "incoming").iterdir())
    st = drop.stat()
    assert st.st_gid == gid and st.st_mode & 0o777 == 0o640
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                        "--clear-groups", str(prog), "-C", str(conf),
                        "x@example.org"], input=b"\n", capture_output=True,
                       timeout=30)
    assert r.returncode == 64
    assert b"-C is not allowed" in r.stderr


def test_sendmail_never_creates_the_spool_layout(tmp_path):
    """A spool directory without its layout (the package made it, no
    daemon ever started): sendmail run by another user creates nothing,
    so nothing in the spool ends up owned by that user, and it exits 75
    saying what to do."""
    import grp
    import pwd
    import shutil
    import tempfile
    from pathlib import Path
    if os.geteuid() != 0:
        pytest.skip("needs root to run as another user")
    nobody = pwd.getpwnam("nobody")
    nogroup = grp.getgrgid(nobody.pw_gid).gr_gid
    # Somewhere user nobody can reach (pytest's own directory is 0700).
    top = Path(tempfile.mkdtemp(prefix="postern-layout-"))
    try:
        top.chmod(0o755)
        spool = top / "spool"
        spool.mkdir()
        os.chown(spool, 0, nogroup)     # owned by root, writable by the
        spool.chmod(0o2770)             # group of the user running it
        conf = top / "postern.conf"
        conf.write_text(CONF % (spool, ""))
        conf.chmod(0o644)
        prog = top / "sendmail"
        shutil.copy(SENDMAIL, prog)
        prog.chmod(0o755)

        def become_nobody():
            os.setgroups([])
            os.setgid(nogroup)
            os.setuid(nobody.pw_uid)

        r = subprocess.run([str(prog), "-C", str(conf), "bob@example.net"],
                           input=b"Subject: x\n\nhi\n", capture_output=True,
                           timeout=30, preexec_fn=become_nobody)
        assert r.returncode == 75, r.stderr
        assert os.listdir(spool) == []
        assert r.stderr == (
            b"sendmail: spool %s is not initialised: start posternd once, "
            b"or run \"postern init-spool\" as root or as the spool's owner;"
            b" nothing was queued\n" % str(spool).encode()), r.stderr
        # The operator's command creates it, owned like the spool itself.
        r = subprocess.run([POSTERN, "init-spool", "-c", str(conf)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        for sub in ["format", "tmp", "log", "bodies", "incoming",
                    "quarantine"]:
            st = (spool / sub).stat()
            assert (st.st_uid, st.st_gid) == (0, nogroup), sub
        r = subprocess.run([str(prog), "-C", str(conf), "bob@example.net"],
                           input=b"Subject: x\n\nhi\n", capture_output=True,
                           timeout=30, preexec_fn=become_nobody)
        assert r.returncode == 0, r.stderr
        assert len(spool_messages(str(spool))) == 1
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_tmpfiles_creates_a_spool_sendmail_accepts(tmp_path):
    """The package's tmpfiles.d entry makes the whole layout, so that
    sendmail works before posternd first starts."""
    from conftest import SOURCE
    if os.geteuid() != 0:
        pytest.skip("systemd-tmpfiles --root needs root")
    with open(os.path.join(SOURCE, "systemd", "postern.tmpfiles")) as f:
        text = f.read()
    # User postern exists only where the package is installed.
    entries = text.replace("@SPOOL_DIR@", "/spool").replace(
        "postern\tpostern", "root\troot")
    (tmp_path / "postern.conf").write_text(entries)
    root = tmp_path / "root"
    root.mkdir()
    r = subprocess.run(["systemd-tmpfiles", "--create", "--root",
                        str(root), str(tmp_path / "postern.conf")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    conf = tmp_path / "sendmail.conf"
    conf.write_text(CONF % (root / "spool", ""))
    r = sendmail(str(conf), "bob@example.net", data="Subject: x\n\nhi\n")
    assert r.returncode == 0, r.stderr
    assert len(spool_messages(str(root / "spool"))) == 1


ALIAS_FILE = """\
# /etc/aliases as Debian ships it, and as admins grow it
postmaster:    root
root: admin@example.net,
\tops@example.net
Webmaster: root
prog: "|/usr/bin/procmail -m"
mixed: /var/mail/archive, keep@example.net
"""


def alias_conf(tmp_path, text, extra="", init=True):
    """A configuration reading 'text' as its alias file."""
    aliases = tmp_path / "aliases"
    aliases.write_text(text)
    path = tmp_path / "postern.conf"
    path.write_text('hostname = "relay.test";\nspool_dir = "%s";\n'
                    'default_domain = "example.org";\n'
                    'aliases_file = "%s";\n%s'
                    % (tmp_path / "spool", aliases, extra))
    if init:
        init_spool(path)
    return str(path), str(aliases)


def test_alias_file_the_debian_way(tmp_path):
    """aliases(5): comments, continuation lines, lists, names in any
    case; program and file targets refused with a warning naming the
    line (an alias left with none is dropped); postern.conf's aliases
    win over the file's."""
    conf, aliases = alias_conf(
        tmp_path, ALIAS_FILE,
        'aliases = { webmaster = "web@example.net"; };\n')
    r = sendmail(conf, "postmaster", "webmaster", "mixed", "prog",
                 data="x\n")
    assert r.returncode == 0, r.stderr
    env, _ = only_message(conf)
    assert env["rcpt"] == ["admin@example.net", "ops@example.net",
                           "web@example.net", "keep@example.net",
                           "prog@example.org"]
    # newaliases (sendmail -bi): checks, counts and says what it refused.
    r = sendmail(conf, "-bi")
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert '%s:6: alias prog: target "|/usr/bin/procmail -m" refused: ' \
        'it is a program' % aliases in err, err
    assert "%s:6: alias prog ignored" % aliases in err
    assert '%s:7: alias mixed: target "/var/mail/archive" refused: ' \
        'it is a file' % aliases in err
    assert b"3 alias(es) from the alias file, 1 from" in r.stdout
    assert b"posternd does not run" in r.stdout


@pytest.mark.parametrize("text, error", [
    ("a: b\nb: a\n", ":1: alias a: aliases loop back to themselves"),
    ("root admin@example.net\n",
     ':1: not an alias ("name: targets" expected)'),
    ("root: admin@@example.net\n", ':1: alias root: "admin@@example.net"'),
    ("  orphan@example.net\n", ":1: a continuation line with no alias"),
])
def test_alias_file_errors_name_the_line(tmp_path, text, error):
    conf, aliases = alias_conf(tmp_path, text, init=False)
    for argv in ([POSTERN, "check-config", "-c", conf],
                 [SENDMAIL, "-C", conf, "-bi"]):
        r = subprocess.run(argv, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode != 0, r
        assert aliases + error in r.stderr, r.stderr


def test_newaliases_reloads_a_running_daemon(tmp_path, daemon_factory):
    conf, aliases = alias_conf(tmp_path, "root: admin@example.net\n",
                               'listen = ( "127.0.0.1:%d" );\n'
                               % free_port())
    d = daemon_factory(conf)
    d.wait_for("event=ready")
    link = tmp_path / "newaliases"
    os.symlink(SENDMAIL, link)
    r = subprocess.run([str(link), "-C", conf], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "1 alias(es) from the alias file" in r.stdout
    assert "posternd reloaded" in r.stdout
    d.wait_for("event=reload")


def test_aliases_apply_at_localhost_and_the_hosts_own_name(conf):
    """root@localhost and root@relay.test (the configured hostname) are
    the local root: aliased; an unaliased name at localhost, which no
    smart host takes, gets the default domain; other domains stay."""
    r = sendmail(conf, "root@localhost", "ops@RELAY.test",
                 "nobody@localhost", "nobody@relay.test",
                 "root@example.net", data="x\n")
    assert r.returncode == 0, r.stderr
    env, _ = only_message(conf)
    assert env["rcpt"] == ["admin@example.org", "oncall@example.org",
                           "nobody@example.org", "nobody@relay.test",
                           "root@example.net"]


def test_alias_file_that_cannot_be_read_is_an_error_naming_it(tmp_path):
    """aliases_file names a directory: an error that says which file and
    why, not an empty alias table."""
    conf, aliases = alias_conf(tmp_path, "", init=False)
    os.unlink(aliases)
    os.mkdir(aliases)
    r = subprocess.run([POSTERN, "check-config", "-c", conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r
    assert "%s: cannot read: Is a directory" % aliases in r.stderr, r.stderr
