"""A real upstream for the proxy tests: it trusts nothing but Rampart's published JWKS.

usage: echo_app.py JWKS_URL AUDIENCE[,AUDIENCE...] [ISSUER]

Listens on a free loopback port and prints `listening on <port>` once it accepts requests.
For every request (any method) it verifies `X-Rampart-Jwt-Assertion` with PyJWT's
`PyJWKClient` (the key by `kid` from the JWKS URL, EdDSA or ES256, the audience, the issuer,
the `rampart-assertion+jwt` type and the expiry all checked) and answers 200 with JSON:

    {"method": "GET", "path": "/a?b=c",
     "claims": {...} | null, "error": null | "why verification failed",
     "headers": {"lower-case-name": ["value", ...], ...}}

so a test sees who the upstream believes is calling, and every header that arrived (a
client-forged `Remote-User` or assertion must never be among them).
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

JWKS_URL = sys.argv[1]
AUDIENCES = sys.argv[2].split(",")
ISSUER = sys.argv[3] if len(sys.argv) > 3 else "rampart"
JWKS = jwt.PyJWKClient(JWKS_URL, cache_keys=True)


def verify(token):
    """The assertion's claims, or raises (PyJWT's exception) when anything is off."""
    if jwt.get_unverified_header(token).get("typ") != "rampart-assertion+jwt":
        raise jwt.InvalidTokenError("not a Rampart identity assertion (typ)")
    key = JWKS.get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA", "ES256"],
        audience=AUDIENCES,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
    )


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_one(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        headers = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        claims, error = None, None
        assertions = self.headers.get_all("X-Rampart-Jwt-Assertion") or []
        if len(assertions) != 1:
            error = f"{len(assertions)} assertions"
        else:
            try:
                claims = verify(assertions[0])
            except Exception as e:  # noqa: BLE001 - the test reads which check failed
                error = f"{type(e).__name__}: {e}"
        body = json.dumps(
            {"method": self.command, "path": self.path, "claims": claims, "error": error, "headers": headers}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_one

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
print(f"listening on {server.server_address[1]}", flush=True)
server.serve_forever()
