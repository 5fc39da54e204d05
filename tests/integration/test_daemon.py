"""posternd's skeleton: configuration checks, start, reload, stop."""

import os
import shutil
import signal
import subprocess

import pytest

from conftest import POSTERN, POSTERND, SOURCE, free_port

EXAMPLE = os.path.join(SOURCE, "conf", "postern.conf")


def run(*argv, env=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(argv, capture_output=True, text=True, env=full_env,
                          timeout=30)


def test_version_and_help():
    r = run(POSTERND, "--version")
    assert r.returncode == 0 and r.stdout.startswith("posternd ")
    r = run(POSTERND, "--help")
    assert r.returncode == 0 and "--check-config" in r.stdout
    r = run(POSTERND, "--no-such-option")
    assert r.returncode == 2 and "usage:" in r.stderr


def test_check_config_accepts_the_example():
    for argv in ([POSTERND, "--check-config", "-c", EXAMPLE],
                 [POSTERN, "check-config", "-c", EXAMPLE]):
        r = run(*argv)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "ok\n"


def test_check_config_reports_every_error_with_its_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text('hostname = "relay.example.org";\n'
                    'limits = {\n'
                    '  idle = "4x";\n'
                    '  sesions = 4;\n'
                    '};\n')
    for argv in ([POSTERND, "--check-config", "-c", str(conf)],
                 [POSTERN, "check-config", "-c", str(conf)]):
        r = run(*argv)
        assert r.returncode == 1
        assert r.stdout == ""
        lines = r.stderr.splitlines()
        assert lines == [
            '%s:3: limits.idle: "4x" is not a duration '
            '(unknown unit (use ms, s, m, h or d))' % conf,
            '%s:4: limits.sesions: unknown key (did you mean "sessions"?)'
            % conf,
        ]


def test_daemon_with_a_bad_config_exits_ex_config(tmp_path):
    """posternd itself refuses a bad configuration with 78 (EX_CONFIG),
    which the unit's RestartPreventExitStatus= keeps from a restart loop,
    and says where the error is."""
    conf = tmp_path / "bad.conf"
    conf.write_text('limits = { idle = "4x"; };\n')
    r = run(POSTERND, "-f", "-c", str(conf))
    assert r.returncode == 78, r.stderr
    assert "event=config-error" in r.stderr
    assert ':1: limits.idle: \\"4x\\" is not a duration' in r.stderr
    assert "event=start-failed" in r.stderr
    with open(os.path.join(SOURCE, "systemd", "postern.service")) as f:
        unit = f.read()
    assert "\nRestartPreventExitStatus=78\n" in unit
    assert "\nSyslogFacility=mail\n" in unit


@pytest.mark.parametrize("args,said", [
    (["status", "--json", "-c", "CONF"], "posternd is not running"),
    (["status", "-c", "CONF", "--json"], "posternd is not running"),
    (["queue", "-c", "CONF", "--json", "show", "0123456789abcdef"],
     "no message 0123456789abcdef"),
    (["probe", "-c", "CONF", "--json"], "no upstream is configured"),
    (["queue", "-c", "CONF", "--json", "frobnicate"], "unknown action"),
])
def test_json_on_every_path_failures_included(tmp_path, args, said):
    """Asked for JSON, a command that fails still prints JSON: an object
    with the error, the exit status unchanged, the message on stderr as
    well; --json may come anywhere among the options."""
    import json
    conf = tmp_path / "postern.conf"
    conf.write_text('spool_dir = "%s";\n' % (tmp_path / "spool"))
    r = run(POSTERN, *[str(conf) if a == "CONF" else a for a in args])
    assert r.returncode in (1, 2), r
    assert said in json.loads(r.stdout)["error"], r.stdout
    assert said in r.stderr


def test_a_bare_default_domain_is_warned_about(tmp_path, daemon_factory):
    """Bare local names (root, cron) get default_domain, else hostname:
    a name a smart host refuses ("vm") is valid but warned about, by
    check-config (still "ok") and by posternd in its log."""
    conf = tmp_path / "postern.conf"
    conf.write_text('hostname = "vm";\nspool_dir = "%s";\nlisten = ( '
                    '"127.0.0.1:%d" );\n' % (tmp_path / "spool", free_port()))
    r = run(POSTERN, "check-config", "-c", str(conf))
    assert r.returncode == 0 and r.stdout == "ok\n", r
    assert r.stderr.startswith('warning: default_domain: "vm" is not a '
                               'fully qualified domain name'), r.stderr
    assert "NAME@vm" in r.stderr
    d = daemon_factory(str(conf))
    d.wait_for("event=config-warning")
    d.wait_for("event=ready")
    for domain in ("example.org", "mail.example.co.uk"):
        conf.write_text('hostname = "vm";\ndefault_domain = "%s";\n'
                        % domain)
        r = run(POSTERN, "check-config", "-c", str(conf))
        assert r.returncode == 0 and r.stderr == "", r
    for domain in ("vm.local", "host.localdomain"):
        conf.write_text('hostname = "%s";\n' % domain)
        r = run(POSTERN, "check-config", "-c", str(conf))
        assert "is not a fully qualified" in r.stderr, (domain, r)


def test_config_found_through_environment(tmp_path):
    conf = tmp_path / "env.conf"
    conf.write_text('log = { level = "shout"; };\n')
    r = run(POSTERN, "check-config", env={"POSTERN_CONFIG": str(conf)})
    assert r.returncode == 1
    assert '%s:1: log.level: "shout" is not a level' % conf in r.stderr


def test_missing_named_file_is_an_error(tmp_path):
    r = run(POSTERN, "check-config", "-c", str(tmp_path / "none.conf"))
    assert r.returncode == 1
    assert "cannot read: No such file or directory" in r.stderr


def test_start_reload_refuse_stop(tmp_path, daemon_factory):
    conf = tmp_path / "postern.conf"
    shutil.copy(EXAMPLE, conf)
    env = {"POSTERN_LISTEN": "127.0.0.1:%d" % free_port(),
           "POSTERN_SPOOL_DIR": str(tmp_path / "spool")}
    d = daemon_factory(str(conf), env)
    d.wait_for("event=ready")

    d.signal(signal.SIGHUP)
    mark = d.wait_for("event=reloaded")

    # A broken file is refused; the daemon keeps running on the old one.
    conf.write_text(conf.read_text().replace('idle = "5m"', 'idle = "soon"'))
    d.signal(signal.SIGHUP)
    i = d.wait_for("event=reload-refused", start=mark)
    errors = [line for line in d.lines[mark:i] if "event=config-error" in line]
    assert errors and 'limits.idle: \\"soon\\" is not a duration' in errors[-1]
    assert d.proc.poll() is None

    # Fixed again: accepted again.
    shutil.copy(EXAMPLE, conf)
    d.signal(signal.SIGHUP)
    d.wait_for("event=reloaded", start=i)

    assert d.stop() == 0
    d.wait_for("event=stopped")


def test_invalid_config_stops_start(tmp_path, daemon_factory):
    conf = tmp_path / "postern.conf"
    conf.write_text('listen = ( "::1:25" );\n')
    d = daemon_factory(str(conf))
    assert d.proc.wait(10) == 78  # EX_CONFIG
    d.wait_for("IPv6 address needs brackets")
    d.wait_for("event=start-failed")


def test_sigint_stops_too(tmp_path, daemon_factory):
    env = {"POSTERN_LISTEN": "127.0.0.1:%d" % free_port(),
           "POSTERN_SPOOL_DIR": str(tmp_path / "spool")}
    d = daemon_factory(EXAMPLE, env)
    d.wait_for("event=ready")
    d.signal(signal.SIGINT)
    assert d.proc.wait(10) == 0
    d.wait_for("event=stopped")


def _relay(tmp_path, daemon_factory, peer):
    """posternd relaying to a real aiosmtpd; returns (daemon, peer)."""
    from conftest import start_posternd
    p = peer()
    d = start_posternd(daemon_factory, tmp_path,
                       'upstreams = ( { host = "127.0.0.1"; port = %d; '
                       'security = "none"; } );\n'
                       'queue = { retry = ( "1s" ); };\n' % p.port)
    return d, p


def _delivered(d, p, subject):
    """A message sent to the daemon's first listener reaches the peer."""
    import time
    from conftest import send_raw
    reply = send_raw(d.port, "a@example.org", ["b@example.org"],
                     b"Subject: %s\r\n\r\nhi\r\n" % subject.encode())
    assert reply.startswith("250 "), reply
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any(b"Subject: " + subject.encode() in m for m in p.messages()):
            return
        time.sleep(0.1)
    raise AssertionError("%s was not delivered" % subject)


@pytest.mark.parametrize("change", ["listen", "spool_dir", "both",
                                    "metrics_listen"])
def test_reload_refuses_restart_only_keys(tmp_path, daemon_factory, peer,
                                          change):
    """spool_dir, listen and metrics_listen are read once, at start: a
    reload that changes them is refused by name, and the daemon goes on
    with what it has, accepting and delivering mail."""
    d, p = _relay(tmp_path, daemon_factory, peer)
    conf = tmp_path / "postern.conf"
    text = conf.read_text()
    keys = []
    if change in ("listen", "both"):
        text = text.replace("127.0.0.1:%d" % d.port,
                            "127.0.0.1:%d" % free_port())
        keys.append("listen")
    if change in ("spool_dir", "both"):
        text = text.replace(d.spool, str(tmp_path / "other-spool"))
        keys.append("spool_dir")
    if change == "metrics_listen":
        text += 'metrics_listen = "127.0.0.1:%d";\n' % free_port()
        keys.append("metrics_listen")
    conf.write_text(text)
    d.signal(signal.SIGHUP)
    i = d.wait_for("event=reload-refused")
    line = d.lines[i]
    assert "keys=%s" % ",".join(sorted(keys)) in line, line
    assert "restart posternd" in line, line
    assert not any("event=reloaded" in l for l in d.lines[i:])
    # `postern reload` says the same, or, following the new spool_dir,
    # which daemon runs where.
    r = run(POSTERN, "reload", "-c", str(conf))
    assert r.returncode == 1
    assert "restart posternd" in r.stderr, r.stderr
    if "spool_dir" in keys:
        assert "posternd pid %d runs on spool %s" % (d.proc.pid, d.spool) \
            in r.stderr, r.stderr
    # Still on the old listener and spool: mail is accepted and delivered.
    _delivered(d, p, "after-refused-reload")
    assert not os.path.exists(tmp_path / "other-spool")


def test_reload_refuses_an_empty_file(tmp_path, daemon_factory, peer):
    """A truncated write leaves an empty file: not a configuration of
    defaults, but an error; the daemon keeps its upstreams."""
    d, p = _relay(tmp_path, daemon_factory, peer)
    conf = tmp_path / "postern.conf"
    conf.write_text("")
    d.signal(signal.SIGHUP)
    i = d.wait_for("event=reload-refused")
    assert "holds no settings" in d.lines[i], d.lines[i]
    assert not any("event=reloaded" in l for l in d.lines[i:])
    conf.write_text("# only a comment\n\n")
    r = run(POSTERN, "reload", "-c", str(conf))
    assert r.returncode == 1 and "holds no settings" in r.stderr, r.stderr
    _delivered(d, p, "after-empty-reload")


def test_reload_dropping_every_upstream_warns(tmp_path, daemon_factory, peer):
    d, p = _relay(tmp_path, daemon_factory, peer)
    conf = tmp_path / "postern.conf"
    text = conf.read_text()
    conf.write_text("\n".join(l for l in text.split("\n")
                              if not l.startswith("upstreams")))
    r = run(POSTERN, "reload", "-c", str(conf))
    assert r.returncode == 0, r.stderr
    assert "postern: warning: the new configuration has no upstream" \
        in r.stderr, r.stderr
    i = d.wait_for("event=reloaded")
    warn = [l for l in d.lines[:i] if "event=reload-warning" in l]
    assert warn and "level=warn" in warn[-1] and \
        "no upstream" in warn[-1], d.lines


def test_status_names_the_spool_it_looked_at(tmp_path, daemon_factory):
    """The file now names a spool no daemon serves, while one runs on the
    old spool: `postern status` says which spool it looked at, where the
    running daemon is, and that the file changed after it started."""
    from conftest import start_posternd
    d = start_posternd(daemon_factory, tmp_path)
    conf = tmp_path / "postern.conf"
    new = tmp_path / "new-spool"
    conf.write_text(conf.read_text().replace(d.spool, str(new)))
    r = run(POSTERN, "status", "-c", str(conf))
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[0] == ("postern: posternd is not running on spool %s (no "
                        "control socket at %s/control) (spool_dir from %s)"
                        % (new, new, conf)), r.stderr
    # Other daemons on this machine may be listed too.
    assert ("  posternd pid %d runs on spool %s, and %s was "
                        "changed after it started: if spool_dir changed, "
                        "restart posternd (a reload keeps the spool it "
                        "started with)" % (d.proc.pid, d.spool, conf)) in lines[1:], \
        r.stderr
