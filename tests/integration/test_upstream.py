"""The upstream client against a real SMTP server (aiosmtpd) in each TLS
mode, with authentication, TLS policy and source binding, through
`postern probe`, the same path deliveries take."""

import json
import os
import re
import subprocess
import time

import pytest

from conftest import POSTERN, free_port


def probe(tmp_path, upstream, *args, name="up"):
    """Writes a config with one upstream and runs postern probe --json."""
    conf = tmp_path / "probe.conf"
    (tmp_path / "spool").mkdir(exist_ok=True)
    conf.write_text('hostname = "client.test";\n'
                    'spool_dir = "%s";\n'
                    'upstreams = ( { name = "%s"; %s } );\n'
                    % (tmp_path / "spool", name, upstream))
    os.chmod(conf, 0o600)
    start = time.monotonic()
    r = subprocess.run([POSTERN, "probe", "-c", str(conf), "--json", *args],
                       capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - start
    assert r.stdout, r.stderr
    result = json.loads(r.stdout)[0]
    result["exit"] = r.returncode
    result["elapsed"] = elapsed
    return result


def up(port, security, extra=""):
    return ('host = "127.0.0.1"; port = %d; security = "%s"; %s'
            % (port, security, extra))


def ca(pki):
    return 'tls = { ca_file = "%s"; };' % (pki / "ca.pem")


def test_none_against_plain(tmp_path, peer):
    p = peer("plain")
    r = probe(tmp_path, up(p.port, "none"))
    assert r["exit"] == 0 and r["ok"], r
    assert r["tls"] is False
    assert "Python SMTP" in r["greeting"]


def test_starttls_verified_with_ca_file(tmp_path, peer, pki):
    p = peer("starttls")
    r = probe(tmp_path, up(p.port, "starttls", ca(pki)))
    assert r["ok"], r
    assert r["tls"] and r["starttls"] and r["tls_verified"]
    assert r["tls_version"] == "TLSv1.3"
    assert "STARTTLS" not in r["ehlo"]        # EHLO again after TLS


def test_implicit_tls(tmp_path, peer, pki):
    p = peer("implicit")
    r = probe(tmp_path, up(p.port, "tls", ca(pki)))
    assert r["ok"], r
    assert r["tls"] and not r["starttls"]
    assert r["mode"] == "implicit TLS"


def test_tls_auto_finds_starttls(tmp_path, peer, pki):
    p = peer("starttls")
    r = probe(tmp_path, up(p.port, "tls-auto", ca(pki)))
    assert r["ok"], r
    assert r["learned"] == "plain" and r["starttls"]
    # The session is named for what it is, never "plain".
    assert r["mode"] == "starttls"
    text = subprocess.run([POSTERN, "probe", "-c",
                           str(tmp_path / "probe.conf")],
                          capture_output=True, text=True, timeout=60).stdout
    assert "  mode       starttls (" in text, text
    # The second run starts from memory.
    r = probe(tmp_path, up(p.port, "tls-auto", ca(pki)))
    assert r["ok"] and r["from_memory"] and r["attempts"] == 1


def test_auto_on_silent_implicit_port_costs_one_greeting_timeout(
        tmp_path, peer, pki):
    p = peer("implicit")
    r = probe(tmp_path, up(p.port, "auto", ca(pki) +
                           ' timeouts = { greeting = "1s"; };'))
    assert r["ok"], r
    assert r["learned"] == "implicit" and r["tls"]
    assert r["path"].startswith("plain(no greeting) -> tls")
    print("auto-negotiation of a silent implicit-TLS port took %.2fs "
          "(greeting timeout 1s)" % r["elapsed"])
    assert r["elapsed"] < 5
    r = probe(tmp_path, up(p.port, "auto", ca(pki) +
                           ' timeouts = { greeting = "1s"; };'))
    assert r["from_memory"] and r["attempts"] == 1
    assert r["elapsed"] < 1.0


def test_tls_auto_against_implicit(tmp_path, peer, pki):
    p = peer("implicit")
    r = probe(tmp_path, up(p.port, "tls-auto", ca(pki) +
                           ' timeouts = { greeting = "500ms"; };'))
    assert r["ok"] and r["learned"] == "implicit", r


def test_auto_against_plain_without_tls(tmp_path, peer):
    p = peer("plain")
    r = probe(tmp_path, up(p.port, "auto"))
    assert r["ok"] and r["tls"] is False, r


def test_auto_starttls_offered_then_refused_is_a_failure(tmp_path, peer,
                                                        pki):
    """auto goes plain only when the server offers no TLS at all: one that
    offers STARTTLS and answers it 454 is a temporary failure."""
    p = peer("starttls", extra=["--starttls-refuse"])
    r = probe(tmp_path, up(p.port, "auto", ca(pki)))
    assert not r["ok"] and r["exit"] == 1, r
    assert r["error_stage"] == "starttls"
    assert r["error_class"] == "temporary"
    assert r["error_code"] == 454
    assert r["error"].startswith("STARTTLS refused: 454 4.7.0 TLS not "
                                 "available"), r["error"]


def test_tls_auto_refuses_plain_only_server(tmp_path, peer):
    p = peer("plain")
    r = probe(tmp_path, up(p.port, "tls-auto"))
    assert not r["ok"] and r["exit"] == 1
    assert "does not offer STARTTLS" in r["error"]


def test_starttls_required_but_missing(tmp_path, peer):
    p = peer("plain")
    r = probe(tmp_path, up(p.port, "starttls"))
    assert not r["ok"]
    assert r["error_stage"] == "ehlo"
    assert "does not offer STARTTLS" in r["error"]


def test_untrusted_certificate_refused_then_accepted(tmp_path, peer, pki):
    p = peer("starttls")
    r = probe(tmp_path, up(p.port, "starttls"))
    assert not r["ok"]
    assert r["error_stage"] == "tls"
    r = probe(tmp_path, up(p.port, "starttls", ca(pki)))
    assert r["ok"], r


def test_tls12_server_against_tls13_only(tmp_path, peer, pki):
    p = peer("starttls", tls12=True)
    r = probe(tmp_path, up(p.port, "starttls",
                           'tls = { ca_file = "%s"; versions = '
                           '( "TLSv1.3" ); };' % (pki / "ca.pem")))
    assert not r["ok"]
    assert r["error_stage"] == "tls"
    assert "version" in r["error"].lower(), r["error"]
    r = probe(tmp_path, up(p.port, "starttls", ca(pki)))
    assert r["ok"] and r["tls_version"] == "TLSv1.2", r


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_auth_mechanisms(tmp_path, peer, pki, mech):
    p = peer("starttls", auth="me:secret", mechs=mech)
    r = probe(tmp_path, up(p.port, "starttls", ca(pki) +
                           ' auth = { user = "me"; password = "secret"; };'))
    assert r["ok"], r
    assert r["auth_chosen"] == mech
    assert mech in r["auth_supported"]


def test_strongest_common_mechanism_wins(tmp_path, peer, pki):
    p = peer("starttls", auth="me:secret")
    r = probe(tmp_path, up(p.port, "starttls", ca(pki) +
                           ' auth = { user = "me"; password = "secret"; };'))
    assert r["ok"] and r["auth_chosen"] == "CRAM-MD5", r
    r = probe(tmp_path, up(p.port, "starttls", ca(pki) +
                           ' auth = { user = "me"; password = "secret";'
                           ' mechanisms = ( "LOGIN" ); };'))
    assert r["ok"] and r["auth_chosen"] == "LOGIN", r


def test_wrong_password_is_a_permanent_auth_failure(tmp_path, peer, pki):
    p = peer("starttls", auth="me:secret", mechs="PLAIN")
    r = probe(tmp_path, up(p.port, "starttls", ca(pki) +
                           ' auth = { user = "me"; password = "wrong"; };'))
    assert not r["ok"]
    assert r["error_stage"] == "auth"
    assert r["error_class"] == "permanent"
    assert r["error_code"] == 535


def test_allow_list_excluding_the_offer(tmp_path, peer, pki):
    p = peer("starttls", auth="me:secret", mechs="LOGIN")
    r = probe(tmp_path, up(p.port, "starttls", ca(pki) +
                           ' auth = { user = "me"; password = "secret";'
                           ' mechanisms = ( "CRAM-MD5" ); };'))
    assert not r["ok"]
    assert r["error_stage"] == "auth"
    assert "LOGIN" in r["error"] and "CRAM-MD5" in r["error"], r["error"]


def test_no_password_in_plain_text(tmp_path, peer):
    p = peer("plain", auth="me:secret", mechs="PLAIN,LOGIN",
             plaintext_auth=True)
    r = probe(tmp_path, up(p.port, "none",
                           'auth = { user = "me"; password = "secret"; };'))
    assert not r["ok"] and r["error_stage"] == "auth", r
    r = probe(tmp_path, up(p.port, "none",
                           'auth = { user = "me"; password = "secret";'
                           ' allow_plaintext = true; };'))
    assert r["ok"] and r["auth_chosen"] == "PLAIN", r


def test_source_bind_seen_by_peer(tmp_path, peer):
    p = peer("plain")
    r = probe(tmp_path, up(p.port, "none", 'bind = "127.0.0.2";'),
              "--send", "rcpt@example.org")
    assert r["ok"] and r["sent"], r
    msgs = p.messages()
    assert len(msgs) == 1
    assert msgs[0].startswith(b"X-Peer: 127.0.0.2\r\n")
    assert b"X-Rcpt-To: rcpt@example.org" in msgs[0]
    # The test message carries what upstreams and filters look for.
    assert re.search(rb"\r\nDate: [A-Z][a-z]{2}, \d+ [A-Z][a-z]{2} \d{4} ",
                     msgs[0]), msgs[0]
    assert re.search(rb"\r\nMessage-ID: <probe\.\d+\.[0-9a-f]{16}"
                     rb"@client\.test>\r\n", msgs[0]), msgs[0]


def test_non_local_bind_fails_clearly(tmp_path, peer):
    p = peer("plain")
    r = probe(tmp_path, up(p.port, "none", 'bind = "192.0.2.1";'))
    assert not r["ok"]
    assert r["error_stage"] == "bind"
    assert "192.0.2.1" in r["error"]
    assert "Cannot assign requested address" in r["error"], r["error"]
    assert p.messages() == []


def test_connection_refused(tmp_path):
    r = probe(tmp_path, up(free_port(), "none"))
    assert not r["ok"] and r["error_stage"] == "connect"
    assert "refused" in r["error"]


def test_probe_text_output(tmp_path, peer, pki):
    p = peer("starttls")
    conf = tmp_path / "text.conf"
    conf.write_text('hostname = "client.test";\nspool_dir = "%s";\n'
                    'upstreams = ( { name = "main"; %s } );\n'
                    % (tmp_path / "spool", up(p.port, "tls-auto", ca(pki))))
    r = subprocess.run([POSTERN, "probe", "-c", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    for word in ("upstream main:", "connect", "greeting", "tls",
                 "TLSv1.3", "ehlo", "result     ok"):
        assert word in r.stdout, r.stdout
