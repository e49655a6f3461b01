"""Signing keys and tokens made in the test, for the unit tests (no server)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ISS, AUD = "rampart", "rampart"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Signer:
    def __init__(self, kid: str, alg: str = "EdDSA") -> None:
        self.kid, self.alg = kid, alg
        self.private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
        if alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())

    def jwk(self) -> dict[str, str]:
        if isinstance(self.private, ed25519.Ed25519PrivateKey):
            x = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            return {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64(x),
                "kid": self.kid,
                "alg": "EdDSA",
                "use": "sig",
            }
        nums = self.private.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64(nums.x.to_bytes(32, "big")),
            "y": b64(nums.y.to_bytes(32, "big")),
            "kid": self.kid,
            "alg": "ES256",
            "use": "sig",
        }

    def sign(self, typ: str = "at+jwt", kid: str | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISS,
            "aud": AUD,
            "sub": "u-1",
            "sid": "s-1",
            "jti": "j-1",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "roles": ["user"],
            "amr": ["pwd"],
            "auth_time": now,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(
            claims, self.private, algorithm=self.alg, headers={"typ": typ, "kid": kid or self.kid}
        )


def unsigned(header: dict[str, Any], claims: dict[str, Any], key: bytes | None = None) -> str:
    """A token with any header: HS256 over ``key`` when given, else no signature (``alg: none``)."""
    h = b64(json.dumps(header).encode())
    p = b64(json.dumps(claims).encode())
    sig = b"" if key is None else hmac.new(key, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(sig)}"
