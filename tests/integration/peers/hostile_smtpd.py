"""A deliberately broken SMTP server: the upstream that misbehaves.

This is a fake, and it exists because no real server produces these
misbehaviours on demand: going silent at a chosen step of the dialogue,
resetting the connection in the middle of DATA, answering with binary
bytes or an HTTP error, sending a multi-line reply that never ends,
pushing plaintext after its 220 to STARTTLS, or trickling its greeting a
byte a second.  Everything a real server does well is tested against
aiosmtpd (aiosmtpd_peer.py); this one only speaks enough SMTP to reach
the step where it turns hostile, and never accepts a message.

  hostile_smtpd.py --port N --behaviour B [--ready FILE] [--log FILE]

One behaviour per instance, the same for every connection:

  silent           accept and never say a word
  stall-ehlo       greet, then never answer EHLO
  stall-mail       answer EHLO, then never answer MAIL
  stall-rcpt       accept MAIL, then never answer RCPT
  stall-data       accept RCPT, then never answer DATA
  stall-body       answer DATA with 354, then stop reading (the client's
                   writes back up; the receive buffer is kept small)
  stall-dot        read the whole message, never answer the final dot
  reset-body       answer DATA with 354, read a little, then reset the
                   connection (RST: SO_LINGER with a zero timeout)
  garbage-binary   binary bytes instead of a greeting
  garbage-http     "HTTP/1.1 400 Bad Request" instead of a greeting
  endless-reply    answer EHLO with "250-" lines, as fast as the socket
                   takes them, until the client hangs up
  starttls-inject  offer STARTTLS and answer it with "220 go ahead" and
                   "250 injected" in the same segment
  trickle-greeting send the greeting one byte a second

A silent server keeps reading (and dropping) what the client sends, so
only its own silence is tested.  "READY" is written to the ready file
once the server listens; the log file gets one line per event
("connect", the commands it read, "sent N bytes", "closed").  Runs until
killed.
"""

import argparse
import socket
import struct
import sys
import threading
import time

BEHAVIOURS = ("silent", "stall-ehlo", "stall-mail", "stall-rcpt",
              "stall-data", "stall-body", "stall-dot", "reset-body",
              "garbage-binary", "garbage-http", "endless-reply",
              "starttls-inject", "trickle-greeting")

GREETING = b"220 hostile.test ESMTP\r\n"


class Closed(Exception):
    """The client went away."""


class Conn:
    def __init__(self, sock, log):
        self.sock, self.log, self.buf = sock, log, b""

    def line(self):
        """The next CRLF-terminated line, without its CRLF."""
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise Closed()
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def command(self):
        line = self.line()
        self.log("read %s" % line.decode("ascii", "replace")[:40])
        return line.upper()

    def send(self, data):
        self.sock.sendall(data)

    def drain(self):
        """Reads and drops everything until the client closes."""
        while self.sock.recv(65536):
            pass
        raise Closed()

    def until_dot(self):
        while b"\r\n.\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise Closed()
            self.buf += data
            # Keep only what could still hold the start of the dot.
            self.buf = self.buf[-8:]
        self.buf = self.buf.split(b"\r\n.\r\n", 1)[1]


def ehlo_reply(starttls=False):
    lines = [b"250-hostile.test", b"250-SIZE 100000000", b"250-8BITMIME"]
    if starttls:
        lines.append(b"250-STARTTLS")
    lines.append(b"250 HELP")
    return b"\r\n".join(lines) + b"\r\n"


def serve(conn, behaviour):
    """Plays 'behaviour' on one connection."""
    if behaviour == "silent":
        conn.drain()
    if behaviour == "garbage-binary":
        conn.send(bytes(range(256)) * 4)
        conn.drain()
    if behaviour == "garbage-http":
        conn.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                  b"Connection: close\r\n\r\n")
        conn.drain()
    if behaviour == "trickle-greeting":
        for i in range(len(GREETING)):
            conn.send(GREETING[i:i + 1])
            time.sleep(1)
        conn.drain()

    conn.send(GREETING)
    if behaviour == "stall-ehlo":
        conn.drain()
    conn.command()
    if behaviour == "endless-reply":
        n, line = 0, b"250-" + b"x" * 70 + b"\r\n"
        try:
            while True:
                conn.send(line * 64)
                n += len(line) * 64
        except OSError:
            conn.log("sent %d bytes" % n)
            raise Closed()
    conn.send(ehlo_reply(starttls=behaviour == "starttls-inject"))
    if behaviour == "starttls-inject":
        conn.command()
        conn.send(b"220 go ahead\r\n250 injected\r\n")
        conn.drain()
    if behaviour == "stall-mail":
        conn.drain()
    conn.command()
    conn.send(b"250 2.1.0 Ok\r\n")
    if behaviour == "stall-rcpt":
        conn.drain()
    while True:
        cmd = conn.command()
        if not cmd.startswith(b"RCPT"):
            break
        conn.send(b"250 2.1.5 Ok\r\n")
    # 'cmd' is DATA now.
    if behaviour == "stall-data":
        conn.drain()
    conn.send(b"354 End data with <CR><LF>.<CR><LF>\r\n")
    if behaviour == "stall-body":
        conn.log("not reading")
        while True:
            time.sleep(60)
    if behaviour == "reset-body":
        got = 0
        while got < 4096:
            data = conn.sock.recv(4096 - got)
            if not data:
                raise Closed()
            got += len(data)
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
        conn.log("reset after %d bytes" % got)
        conn.sock.close()
        raise Closed()
    conn.until_dot()
    conn.log("read the final dot")
    conn.drain()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--behaviour", choices=BEHAVIOURS, required=True)
    ap.add_argument("--ready")
    ap.add_argument("--log")
    args = ap.parse_args()

    lock = threading.Lock()

    def log(text):
        if args.log:
            with lock, open(args.log, "a") as f:
                f.write(text + "\n")

    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.behaviour == "stall-body":
        # Set before listen() so that accepted sockets inherit it: the
        # client's writes then back up after a few KiB, not megabytes.
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ls.bind(("127.0.0.1", args.port))
    ls.listen(64)
    if args.ready:
        with open(args.ready, "w") as f:
            f.write("READY\n")

    def handle(sock):
        conn = Conn(sock, log)
        log("connect")
        try:
            serve(conn, args.behaviour)
        except (Closed, OSError):
            pass
        finally:
            log("closed")
            try:
                sock.close()
            except OSError:
                pass

    while True:
        sock, _ = ls.accept()
        threading.Thread(target=handle, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
