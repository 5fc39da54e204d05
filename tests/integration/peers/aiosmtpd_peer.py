"""Runs aiosmtpd (Debian's python3-aiosmtpd, a real SMTP server we did not
write) as an upstream for the tests, in the mode a test asks for.

  aiosmtpd_peer.py --port N [--tls-cert C --tls-key K]
                   [--mode plain|starttls|implicit] [--tls12-only]
                   [--auth USER:PASSWORD] [--auth-mechs PLAIN,LOGIN,CRAM-MD5]
                   [--auth-plaintext] [--maildir DIR] [--ready FILE]
                   [--reject ADDR]... [--defer ADDR]...
                   [--defer-data N] [--slow-data SECONDS] [--sessions FILE]
                   [--size BYTES] [--smtputf8]

The policy options are what a real server's configuration decides: refuse
a recipient (550 5.1.1), greylist one (451 4.7.1), answer 451 to the first
N messages' data, or take its time over the data.  --sessions appends a
line per EHLO (one per plain connection) to FILE.  --size announces
SIZE (and refuses larger messages), --smtputf8 offers SMTPUTF8 (aiosmtpd
does not by default).

Received messages go to DIR/N.eml with an envelope line first
("X-Peer: ip", "X-Mail-From:", "X-Mail-Options:" with the MAIL
parameters, "X-Rcpt-To:"); "READY" is written to the
ready file once the server listens.  Runs until killed.

More policies of real servers: --starttls-refuse (with --mode starttls)
offers STARTTLS and answers it 454 4.7.0, as a server whose TLS is
broken for now does.  --rcpt-limit N takes N recipients per transaction
and answers 452 4.5.3 to each RCPT past them (RFC 5321 4.5.3.1.10).
--transactions FILE appends a line per MAIL command ("MAIL sender") to
FILE.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, auth_mechanism


class Handler:
    def __init__(self, maildir, user, password, args):
        self.maildir = maildir
        self.user = user
        self.password = password
        self.count = 0
        self.args = args
        self.data_seen = 0

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        session.host_name = hostname
        if self.args.sessions:
            with open(self.args.sessions, "a") as f:
                f.write("%s\n" % hostname)
        return responses

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        if self.args.transactions:
            with open(self.args.transactions, "a") as f:
                f.write("MAIL %s\n" % address)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        if self.args.rcpt_limit and \
                len(envelope.rcpt_tos) >= self.args.rcpt_limit:
            return "452 4.5.3 Too many recipients"
        if address in self.args.reject:
            return "550 5.1.1 <%s>: Recipient address rejected" % address
        if address in self.args.defer:
            return "451 4.7.1 <%s>: greylisted, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_seen += 1
        if self.args.slow_data:
            await asyncio.sleep(self.args.slow_data)
        if self.data_seen <= self.args.defer_data:
            return "451 4.3.0 Temporary failure, try again"
        self.count += 1
        if self.maildir:
            path = os.path.join(self.maildir, "%d-%d.eml" % (os.getpid(),
                                                              self.count))
            with open(path + ".tmp", "wb") as f:
                f.write(b"X-Peer: %s\r\n" % session.peer[0].encode())
                f.write(b"X-Mail-From: %s\r\n" % envelope.mail_from.encode())
                f.write(b"X-Mail-Options: %s\r\n" %
                        " ".join(envelope.mail_options).encode())
                for r in envelope.rcpt_tos:
                    f.write(b"X-Rcpt-To: %s\r\n" % r.encode())
                f.write(b"X-TLS: %s\r\n" %
                        (b"yes" if session.ssl else b"no"))
                f.write(b"X-Auth: %s\r\n" %
                        (str(session.auth_data or "").encode()))
                f.write(envelope.original_content)
            os.rename(path + ".tmp", path)
        return "250 2.0.0 Message accepted for delivery"

    @auth_mechanism("CRAM-MD5")
    async def auth_CRAM_MD5(self, server, args):
        challenge = ("<%d.%d@peer.test>" % (os.getpid(),
                                            int(time.time()))).encode()
        answer = await server.challenge_auth(challenge, encode_to_b64=True)
        if answer is None or not isinstance(answer, bytes):
            return AuthResult(success=False, handled=False)
        try:
            user, digest = answer.decode().rsplit(" ", 1)
        except ValueError:
            return AuthResult(success=False, handled=False)
        want = hmac.new(self.password.encode(), challenge,
                        hashlib.md5).hexdigest()
        if user == self.user and hmac.compare_digest(want, digest):
            return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            ok = (auth_data.login.decode() == user and
                  auth_data.password.decode() == password)
            return AuthResult(success=ok, handled=False,
                              auth_data=user if ok else None)
        return AuthResult(success=False, handled=False)
    return authenticator


def tls_context(args):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    if args.tls12_only:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class RefusingSMTP(SMTP):
    """Offers STARTTLS (it has a TLS context) and refuses it."""

    async def smtp_STARTTLS(self, arg):
        await self.push("454 4.7.0 TLS not available due to temporary "
                        "reason")


class RefusingController(Controller):
    def factory(self):
        return RefusingSMTP(self.handler, **self.SMTP_kwargs)


class ImplicitController(Controller):
    """aiosmtpd listens with TLS from the first byte."""

    def __init__(self, handler, ctx, **kwargs):
        self._implicit_ctx = ctx
        super().__init__(handler, ssl_context=ctx, **kwargs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--mode", default="plain",
                    choices=("plain", "starttls", "implicit"))
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls12-only", action="store_true")
    ap.add_argument("--auth")
    ap.add_argument("--auth-mechs")
    ap.add_argument("--auth-plaintext", action="store_true")
    ap.add_argument("--maildir")
    ap.add_argument("--ready")
    ap.add_argument("--reject", action="append", default=[])
    ap.add_argument("--defer", action="append", default=[])
    ap.add_argument("--defer-data", type=int, default=0)
    ap.add_argument("--slow-data", type=float, default=0)
    ap.add_argument("--starttls-refuse", action="store_true")
    ap.add_argument("--rcpt-limit", type=int, default=0)
    ap.add_argument("--transactions")
    ap.add_argument("--sessions")
    ap.add_argument("--size", type=int, default=0,
                    help="announce SIZE and refuse larger messages")
    ap.add_argument("--smtputf8", action="store_true",
                    help="offer SMTPUTF8")
    args = ap.parse_args()

    user, password = (args.auth.split(":", 1) if args.auth
                      else ("", ""))
    handler = Handler(args.maildir, user, password, args)
    kwargs = {"hostname": args.host, "port": args.port,
              "server_hostname": "peer.test"}
    smtp_kwargs = {}
    if args.size:
        smtp_kwargs["data_size_limit"] = args.size
    smtp_kwargs["enable_SMTPUTF8"] = args.smtputf8
    if args.auth:
        smtp_kwargs["authenticator"] = make_authenticator(user, password)
        smtp_kwargs["auth_require_tls"] = not args.auth_plaintext
        if args.auth_mechs:
            wanted = set(args.auth_mechs.upper().split(","))
            smtp_kwargs["auth_exclude_mechanism"] = [
                m for m in ("PLAIN", "LOGIN", "CRAM-MD5")
                if m not in wanted]
    else:
        smtp_kwargs["auth_exclude_mechanism"] = ["PLAIN", "LOGIN",
                                                 "CRAM-MD5"]
    if args.mode == "starttls":
        smtp_kwargs["tls_context"] = tls_context(args)
        cls = RefusingController if args.starttls_refuse else Controller
        controller = cls(handler, **kwargs, **smtp_kwargs)
    elif args.mode == "implicit":
        controller = ImplicitController(handler, tls_context(args),
                                        **kwargs, **smtp_kwargs)
    else:
        controller = Controller(handler, **kwargs, **smtp_kwargs)
    # The implicit-TLS server cannot be probed by the controller's own
    # plain-text readiness check: start it without waiting for that.
    controller.ready_timeout = 10
    try:
        controller.start()
    except Exception as e:   # readiness check against implicit TLS
        if args.mode != "implicit":
            raise
        print("note: %s" % e, file=sys.stderr)
    if args.ready:
        with open(args.ready, "w") as f:
            f.write("READY\n")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
