"""A deliberately broken SOCKS5 proxy: the proxy that misbehaves.

This is a fake, and it exists because no real proxy produces these
misbehaviours on demand: hanging up in the middle of the SOCKS5
handshake, or trickling its replies one byte a second.  Working proxies
are tested against Dante, microsocks and tinyproxy (test_proxy.py); this
one only speaks enough SOCKS5 (RFC 1928) to reach the step where it turns
hostile, and never tunnels anything.

  hostile_proxy.py --port N --behaviour B [--ready FILE] [--log FILE]

One behaviour per instance, the same for every connection:

  close    answer the method selection (no authentication), read the
           CONNECT request, then close without a reply
  trickle  send the method selection reply and a CONNECT reply (success,
           bound to 0.0.0.0:0) one byte a second, then close

"READY" is written to the ready file once the proxy listens; the log file
gets one line per event ("connect", "greeting", "request", "closed").
Runs until killed.
"""

import argparse
import socket
import sys
import threading
import time


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError()
        data += chunk
    return data


def read_greeting(sock):
    """RFC 1928 §3: VER, NMETHODS, METHODS."""
    ver, nmethods = recv_exact(sock, 2)
    recv_exact(sock, nmethods)
    return ver


def read_request(sock):
    """RFC 1928 §4: VER CMD RSV ATYP DST.ADDR DST.PORT."""
    ver, cmd, _, atyp = recv_exact(sock, 4)
    if atyp == 1:
        recv_exact(sock, 4)
    elif atyp == 3:
        recv_exact(sock, recv_exact(sock, 1)[0])
    elif atyp == 4:
        recv_exact(sock, 16)
    recv_exact(sock, 2)


def trickle(sock, data):
    for i in range(len(data)):
        sock.sendall(data[i:i + 1])
        time.sleep(1)


def serve(sock, behaviour, log):
    read_greeting(sock)
    log("greeting")
    if behaviour == "close":
        sock.sendall(b"\x05\x00")
        read_request(sock)
        log("request")
        return
    trickle(sock, b"\x05\x00")
    read_request(sock)
    log("request")
    trickle(sock, b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--behaviour", choices=("close", "trickle"),
                    required=True)
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
    ls.bind(("127.0.0.1", args.port))
    ls.listen(64)
    if args.ready:
        with open(args.ready, "w") as f:
            f.write("READY\n")

    def handle(sock):
        log("connect")
        try:
            serve(sock, args.behaviour, log)
        except (EOFError, OSError):
            pass
        finally:
            log("closed")
            sock.close()

    while True:
        sock, _ = ls.accept()
        threading.Thread(target=handle, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
