"""The log as a machine reads it: every line splits into key=value fields,
and text a peer controls never stands as a field of its own."""

import re

from conftest import send_raw, start_posternd, wait_until
from test_delivery import relay_conf

# A key=value field: a bare token, or a double-quoted string with \" and
# \\ escapes, as qs() writes them.
FIELD = re.compile(r'([a-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|[^ ]*)(?: |$)')


def fields(line):
    """The line's fields after its prefix (timestamp and program), in
    order; asserts that nothing is left over."""
    body = line[line.index("level="):]
    out, pos = [], 0
    while pos < len(body):
        m = FIELD.match(body, pos)
        assert m, "not key=value at %r in %r" % (body[pos:], line)
        out.append((m.group(1), m.group(2)))
        pos = m.end()
    return out


def test_addresses_cannot_plant_fields(tmp_path, daemon_factory, peer):
    p = peer()
    d = start_posternd(daemon_factory, tmp_path,
                       relay_conf(("up", p.port)))
    evil_from = '"x event=delivered code=250"@example.org'
    evil_rcpt = '"a event=delivered rcpt=<bob@example.org>"@example.org'
    reply = send_raw(d.port, evil_from, [evil_rcpt], b"Subject: x\r\n\r\nx\r\n")
    assert reply.startswith("250 "), reply
    try:
        wait_until(lambda: len(p.messages()) == 1, what="delivery")
    finally:
        print("\n".join(d.lines))
    d.wait_for("event=removed")
    for line in d.lines:
        keys = [k for k, _ in fields(line)]
        assert keys.count("event") == 1, line
        assert len(keys) == len(set(keys)), line
    accepted = dict(fields(d.lines[d.wait_for("event=accepted")]))
    assert accepted["from"] == r'"<\"x event=delivered code=250\"@example.org>"'
    delivered = [dict(fields(l)) for l in d.lines if "rcpt=" in l]
    assert [f["rcpt"] for f in delivered] == \
        [r'"<\"a event=delivered rcpt=<bob@example.org>\"@example.org>"']
    assert delivered[0]["event"] == "delivered"
