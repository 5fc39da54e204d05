"""posternd's skeleton: configuration checks, start, reload, stop."""

import os
import shutil
import signal
import subprocess

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
    assert d.proc.wait(10) == 1
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
