"""Fault injection: posternd killed with SIGKILL at random points while
clients hand it mail and it delivers to a real server (aiosmtpd).

What must hold, whatever the moment of the kill:
  - every message the daemon answered 250 for is delivered (at least once);
  - everything delivered is complete and was sent by a client (a message
    cut by the kill is never delivered);
  - no spool entry is ever found corrupt (nothing quarantined);
  - the daemon starts again cleanly every time.
A message committed just before the kill but not yet acknowledged may be
delivered though its client never saw the 250 (the client would send it
again): it is counted, as are duplicates (a kill between the upstream's
250 and the removal from the spool).

POSTERN_FAULT_ROUNDS sets the number of kills (default 100; the long mode
of the README uses 1000).
"""

import os
import random
import socket
import threading
import time

from conftest import spool_messages, start_posternd

ROUNDS = int(os.environ.get("POSTERN_FAULT_ROUNDS", "100"))
CLIENTS = 3
MESSAGES_PER_CLIENT = 40        # at most, per round


class Loader:
    """Clients sending numbered messages; records what got a 250."""

    def __init__(self, port, tag):
        self.port = port
        self.tag = tag
        self.acked = set()
        self.sent = set()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(i,),
                                         daemon=True)
                        for i in range(CLIENTS)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        for t in self.threads:
            t.join(30)

    def client(self, n):
        try:
            with socket.create_connection(("127.0.0.1", self.port),
                                          timeout=10) as s:
                f = s.makefile("rwb")
                if not f.readline().startswith(b"220"):
                    return
                f.write(b"EHLO load.test\r\n")
                f.flush()
                while f.readline()[3:4] == b"-":
                    pass
                for i in range(MESSAGES_PER_CLIENT):
                    name = "%s-%d-%d" % (self.tag, n, i)
                    with self.lock:
                        self.sent.add(name)
                    f.write(b"MAIL FROM:<load@example.org>\r\n"
                            b"RCPT TO:<sink@example.org>\r\nDATA\r\n")
                    f.flush()
                    for _ in range(3):
                        if not f.readline():
                            return
                    body = (b"Subject: %s\r\n\r\n" % name.encode() +
                            b"payload line\r\n" * 200 +
                            b"END %s\r\n.\r\n" % name.encode())
                    f.write(body)
                    f.flush()
                    reply = f.readline()
                    if not reply.startswith(b"250"):
                        return
                    with self.lock:
                        self.acked.add(name)
        except OSError:
            return


def delivered(peer):
    """Subject -> number of copies; and whether each copy is complete."""
    copies = {}
    for m in peer.messages():
        head, _, body = m.partition(b"\r\n\r\n")
        subject = [l for l in head.split(b"\r\n")
                   if l.startswith(b"Subject: ")][0][9:].decode()
        complete = body.rstrip(b"\r\n").endswith(b"END " + subject.encode())
        assert complete, "a cut message was delivered: %s" % subject
        copies[subject] = copies.get(subject, 0) + 1
    return copies


def test_kill_9_under_load(tmp_path, daemon_factory, peer):
    sink = peer()
    conf = ('upstreams = ( { host = "127.0.0.1"; port = %d; '
            'security = "none"; } );\nqueue = { retry = ( "1s" ); };\n'
            % sink.port)
    rng = random.Random(int(os.environ.get("POSTERN_FAULT_SEED", "1")))
    acked, sent = set(), set()
    spool = None
    for round_no in range(ROUNDS):
        d = start_posternd(daemon_factory, tmp_path, conf)
        spool = d.spool
        load = Loader(d.port, "r%d" % round_no)
        load.start()
        time.sleep(rng.uniform(0.0, 0.25))
        d.proc.kill()
        d.proc.wait()
        load.join()
        acked |= load.acked
        sent |= load.sent
        assert not os.listdir(os.path.join(spool, "quarantine")), \
            "recovery found a corrupt entry in round %d" % round_no
    # A last run without a kill: everything queued goes out.
    d = start_posternd(daemon_factory, tmp_path, conf)
    deadline = time.monotonic() + 120
    while spool_messages(d.spool) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert spool_messages(d.spool) == [], "the queue did not drain"
    assert not os.listdir(os.path.join(spool, "quarantine"))
    copies = delivered(sink)
    missing = acked - set(copies)
    assert not missing, "acknowledged but never delivered: %s" % \
        sorted(missing)[:10]
    assert set(copies) <= sent, "delivered what nobody sent"
    unacked = set(copies) - acked
    duplicated = sum(1 for n in copies.values() if n > 1)
    print("%d kills: %d acknowledged, %d delivered, %d duplicated, "
          "%d delivered without their 250 (committed just before a kill)"
          % (ROUNDS, len(acked), len(copies), duplicated, len(unacked)))
