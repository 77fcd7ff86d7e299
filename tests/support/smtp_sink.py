"""An SMTP server of the tests' own (aiosmtpd), on 127.0.0.1 at a port the kernel picks.

Each accepted message is parsed with Python's own e-mail package (independent of the sender's
MIME code) and written to OUT as N.json (envelope recipients, headers, the text body, whether
the session was TLS, and each attachment's name, type and file) with every attachment decoded
beside it as N-<filename>; the JSON is renamed into place last, so a reader never sees half.

  python3 smtp_sink.py --out DIR --port-file FILE [--refuse-file FILE] [--cert PEM --key PEM]

--refuse-file: while that file exists, DATA is answered 451 (try again later).
--cert/--key: STARTTLS offered and required before MAIL.
--auth USER:PASSWORD: (with --cert) AUTH PLAIN/LOGIN required, with exactly these.
The port is written to --port-file once the server listens. Runs until killed.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, out, refuse_file):
        self.out = out
        self.refuse_file = refuse_file
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_file and os.path.exists(self.refuse_file):
            return "451 4.3.0 not now, try again later"
        self.count += 1
        n = f"{self.count:04d}"
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        attachments = []
        for part in message.iter_attachments():
            name = os.path.basename(part.get_filename() or "unnamed")
            path = os.path.join(self.out, f"{n}-{name}")
            with open(path, "wb") as f:
                f.write(part.get_payload(decode=True))
            attachments.append(
                {"filename": name, "content_type": part.get_content_type(),
                 "charset": part.get_content_charset(), "file": path}
            )
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "body": body.get_content() if body is not None else None,
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
            "attachments": attachments,
        }
        tmp = os.path.join(self.out, f".{n}.json")
        with open(tmp, "w") as f:
            json.dump(meta, f)
        os.rename(tmp, os.path.join(self.out, f"{n}.json"))
        return "250 OK"


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--refuse-file")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--auth")
    args = ap.parse_args()
    authenticator = None
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword)
                  and auth_data.login == user.encode()
                  and auth_data.password == password.encode())
            return AuthResult(success=ok)
    handler = Sink(args.out, args.refuse_file)
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.test", tls_context=context,
                     require_starttls=context is not None,
                     authenticator=authenticator, auth_required=authenticator is not None),
        "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, args.port_file)
    await server.serve_forever()


asyncio.run(main())
