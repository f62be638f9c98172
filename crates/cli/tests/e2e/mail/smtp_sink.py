"""A real SMTP server for the e2e tests: aiosmtpd on 127.0.0.1:PORT that insists on
STARTTLS (with the certificate given) before it takes a sign-in, accepts one user, and
keeps each message it is given as an .eml file in FOLDER.

    python3 smtp_sink.py FOLDER PORT CERT KEY USER PASSWORD

Prints "ready" once it listens; stops when its standard input closes.
"""

import pathlib
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

folder, port, cert, key, user, password = sys.argv[1:7]
kept = pathlib.Path(folder)


class Keep:
    async def handle_DATA(self, server, session, envelope):
        count = len(list(kept.iterdir()))
        (kept / f"{count:04}.eml").write_bytes(envelope.original_content)
        return "250 kept"


def authenticate(server, session, envelope, mechanism, data):
    ok = (
        isinstance(data, LoginPassword)
        and data.login.decode() == user
        and data.password.decode() == password
    )
    return AuthResult(success=ok)


tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
tls.load_cert_chain(cert, key)
controller = Controller(
    Keep(),
    hostname="127.0.0.1",
    port=int(port),
    tls_context=tls,
    require_starttls=True,
    authenticator=authenticate,
    auth_require_tls=True,
)
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
