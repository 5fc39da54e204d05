"""The Debian package: built from a copy of the tree, then its contents.

Building takes a minute or more and needs devscripts, debhelper and the
build dependencies, so it runs only with POSTERN_TEST_PACKAGE=1.  The
package is inspected with dpkg-deb, never installed: it would replace
the machine's MTA.
"""

import os
import posixpath
import re
import shutil
import subprocess

import pytest

from conftest import SOURCE

pytestmark = pytest.mark.skipif(
    os.environ.get("POSTERN_TEST_PACKAGE") != "1",
    reason="building the .deb takes minutes: set POSTERN_TEST_PACKAGE=1")

# Top-level entries of the tree that are not sources.
NOT_SOURCE = re.compile(r"^(build.*|\.git|spool|debian|__pycache__)$")

# dpkg -c: "perms owner/group size date time path[ -> target]".
LISTING = re.compile(r"^(\S+) \S+ +\d+ \S+ \S+ \./(\S*?)(?: -> (\S+))?$")


def ignore_non_source(directory, names):
    if os.path.abspath(directory) == os.path.abspath(SOURCE):
        return [n for n in names if NOT_SOURCE.match(n)]
    return [n for n in names if n == "__pycache__"]


def source_units():
    """The systemd units the tree ships, which the package must carry."""
    return sorted(n for n in os.listdir(os.path.join(SOURCE, "systemd"))
                  if n.endswith((".service", ".socket")))


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """Builds the package as packaging/README.md says; returns its path."""
    for tool in ("dpkg-buildpackage", "dh"):
        if shutil.which(tool) is None:
            pytest.skip("%s is not installed (apt-get install devscripts "
                        "debhelper)" % tool)
    top = tmp_path_factory.mktemp("deb")
    tree = top / "postern"
    shutil.copytree(SOURCE, tree, symlinks=True, ignore=ignore_non_source)
    shutil.copytree(tree / "packaging" / "debian", tree / "debian")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(top),
        "LC_ALL": "C.UTF-8",
        # The unit suite has run already; this test is about the package.
        "DEB_BUILD_OPTIONS": "nocheck parallel=%d" % (os.cpu_count() or 1),
    }
    r = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=tree,
                       env=env, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, ("dpkg-buildpackage failed:\n"
                               + (r.stdout + r.stderr)[-6000:])
    debs = list(top.glob("postern_*.deb"))
    assert len(debs) == 1, sorted(p.name for p in top.iterdir())
    return str(debs[0])


@pytest.fixture(scope="module")
def listing(deb):
    """{path: (mode string, symlink target or None)} from dpkg -c."""
    r = subprocess.run(["dpkg", "-c", deb], capture_output=True, text=True,
                       check=True)
    files = {}
    for line in r.stdout.splitlines():
        m = LISTING.match(line)
        assert m, "unexpected dpkg -c line: %r" % line
        files[m.group(2).rstrip("/")] = (m.group(1), m.group(3))
    return files


def dpkg_deb(option, deb, *names):
    """dpkg-deb --field or --info of 'deb', for the fields or files named."""
    return subprocess.run(["dpkg-deb", option, deb, *names],
                          capture_output=True, text=True, check=True).stdout


def test_programs_are_installed_executable(listing):
    for path in ("usr/sbin/posternd", "usr/bin/postern",
                 "usr/sbin/postern-sendmail"):
        mode, target = listing[path]
        assert mode.startswith("-rwxr-xr-x"), (path, mode)
        assert target is None


def test_sendmail_and_mailq_point_at_postern_sendmail(listing):
    expect = {
        "usr/sbin/sendmail": "usr/sbin/postern-sendmail",
        "usr/bin/mailq": "usr/sbin/postern-sendmail",
        "usr/lib/sendmail": "usr/sbin/postern-sendmail",
        "usr/share/man/man8/sendmail.8.gz":
            "usr/share/man/man8/postern-sendmail.8.gz",
        "usr/share/man/man8/mailq.8.gz":
            "usr/share/man/man8/postern-sendmail.8.gz",
    }
    for link, final in expect.items():
        path, seen = link, set()
        while listing[path][1] is not None:
            assert path not in seen, "symlink loop at " + link
            seen.add(path)
            target = listing[path][1]
            path = posixpath.normpath(posixpath.join(
                posixpath.dirname(path), target)).lstrip("/")
            assert path in listing, "%s points outside the package: %s" % (
                link, target)
        assert path == final, (link, path)


def test_every_symlink_resolves_inside_the_package(listing):
    for path, (mode, target) in listing.items():
        if target is None:
            continue
        assert not target.startswith("/"), "absolute link %s" % path
        dest = posixpath.normpath(posixpath.join(posixpath.dirname(path),
                                                 target))
        assert dest in listing, "%s -> %s dangles" % (path, target)


def test_man_pages_units_and_system_files(listing):
    for page in ("man1/postern.1.gz", "man5/postern.conf.5.gz",
                 "man8/posternd.8.gz", "man8/postern-sendmail.8.gz"):
        assert "usr/share/man/" + page in listing, page
    for unit in source_units():
        assert "lib/systemd/system/" + unit in listing, unit
    assert "usr/lib/sysusers.d/postern.conf" in listing
    assert "usr/lib/tmpfiles.d/postern.conf" in listing
    assert "etc/postern/postern.conf" in listing
    assert not [p for p in listing if p.startswith("usr/local")]


def test_configuration_is_a_conffile(deb):
    conffiles = dpkg_deb("--info", deb, "conffiles")
    assert conffiles.split() == ["/etc/postern/postern.conf"]


def test_it_is_a_mail_transport_agent(deb):
    for field in ("Provides", "Conflicts", "Replaces"):
        value = dpkg_deb("--field", deb, field)
        assert "mail-transport-agent" in value, (field, value)


def test_maintainer_scripts_create_the_user_and_make_sendmail_setgid(deb):
    postinst = dpkg_deb("--info", deb, "postinst")
    # The user and spool first, then the setgid override that needs them.
    users = postinst.index("systemd-sysusers")
    spool = postinst.index("systemd-tmpfiles")
    override = postinst.index("dpkg-statoverride --update --add root "
                              "postern 2755")
    assert users < spool < override


def test_lintian_finds_no_errors(deb):
    if shutil.which("lintian") is None:
        pytest.skip("lintian is not installed")
    r = subprocess.run(["lintian", "--fail-on", "error", deb],
                       capture_output=True, text=True, timeout=600)
    errors = [line for line in r.stdout.splitlines()
              if line.startswith("E: ")]
    assert r.returncode == 0 and not errors, r.stdout + r.stderr
