"""The pure part of JWS verification: the header read raw, the algorithm pinned to the key's,
``typ`` checked, then PyJWT for the signature and the registered claims. No I/O."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from .errors import InvalidToken

ALGORITHMS: tuple[str, ...] = ("EdDSA", "ES256")
"""The only algorithms accepted, whatever a token's header says (no ``none``, no HMAC)."""
ACCESS_TOKEN_TYP = "at+jwt"
ASSERTION_TYP = "rampart-assertion+jwt"
MAX_KEYS = 16
MAX_TOKEN_BYTES = 8192

_KTY_CRV = {"EdDSA": ("OKP", "Ed25519"), "ES256": ("EC", "P-256")}


@dataclass(frozen=True, slots=True)
class VerifyingKey:
    kid: str
    alg: str
    key: Any  # a cryptography public key


@dataclass(frozen=True, slots=True)
class Header:
    alg: str
    typ: str
    kid: str | None


def parse_jwks(doc: Any) -> dict[str, VerifyingKey]:
    """The usable keys of a JWKS document: EdDSA (Ed25519) and ES256 (P-256) signing keys with a
    ``kid``; anything else is skipped. At most ``MAX_KEYS``."""
    keys: dict[str, VerifyingKey] = {}
    entries = doc.get("keys") if isinstance(doc, Mapping) else None
    if not isinstance(entries, list):
        raise ValueError("not a JWKS document")
    for jwk in entries:
        if len(keys) >= MAX_KEYS:
            break
        if not isinstance(jwk, Mapping):
            continue
        alg, kid = jwk.get("alg"), jwk.get("kid")
        if alg not in ALGORITHMS or not isinstance(kid, str) or not kid:
            continue
        if (jwk.get("kty"), jwk.get("crv")) != _KTY_CRV[alg] or jwk.get("use", "sig") != "sig":
            continue
        try:
            keys[kid] = VerifyingKey(kid, alg, jwt.PyJWK(dict(jwk), algorithm=alg).key)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
    return keys


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def read_header(token: str) -> Header:
    """The header of a compact JWS, refusing any algorithm outside ``ALGORITHMS`` before a key
    is even looked up."""
    if not token or len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
        raise InvalidToken("token_malformed", "not a compact JWS")
    try:
        raw = json.loads(_b64(token.split(".", 1)[0]))
    except (ValueError, binascii.Error) as e:
        raise InvalidToken("token_malformed", "unreadable JWS header") from e
    if not isinstance(raw, dict):
        raise InvalidToken("token_malformed", "unreadable JWS header")
    alg = raw.get("alg")
    if alg not in ALGORITHMS:
        raise InvalidToken("token_algorithm", f"algorithm {alg!r} is not accepted")
    typ = raw.get("typ")
    kid = raw.get("kid")
    return Header(
        alg=str(alg),
        typ=typ.lower() if isinstance(typ, str) else "",
        kid=kid if isinstance(kid, str) else None,
    )


def check_typ(header: Header, expected: str) -> None:
    if header.typ not in (expected, "application/" + expected):
        raise InvalidToken("token_type", f"typ {header.typ!r} is not {expected!r}")


_REQUIRED = ["exp", "iat", "nbf", "iss", "aud", "sub"]


def verify_signed(
    token: str, header: Header, key: VerifyingKey, *, issuer: str, audience: str, leeway: float
) -> dict[str, Any]:
    """Signature (with the key's own algorithm only) and ``iss``, ``aud``, ``exp``, ``nbf``."""
    if header.alg != key.alg:
        raise InvalidToken("token_algorithm", "algorithm does not match the key's")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[key.alg],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": _REQUIRED},
        )
    except jwt.InvalidSignatureError as e:
        raise InvalidToken("token_signature", "signature is invalid") from e
    except jwt.ExpiredSignatureError as e:
        raise InvalidToken("token_expired", "token has expired") from e
    except jwt.ImmatureSignatureError as e:
        raise InvalidToken("token_not_yet_valid", "token is not valid yet") from e
    except jwt.InvalidAudienceError as e:
        raise InvalidToken("token_audience", "audience is not accepted") from e
    except jwt.InvalidIssuerError as e:
        raise InvalidToken("token_issuer", "issuer is not accepted") from e
    except jwt.InvalidAlgorithmError as e:
        raise InvalidToken("token_algorithm", "algorithm is not accepted") from e
    except jwt.PyJWTError as e:
        raise InvalidToken("token_malformed", f"token is malformed: {e}") from e
    return claims
