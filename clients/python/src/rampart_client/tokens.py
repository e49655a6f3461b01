"""Verifiers for Rampart's access tokens and the gateway's identity assertion, sync and async.

Offline (the default): the signature against the cached JWKS, the algorithm pinned to EdDSA or
ES256 (the key's own), ``typ``, ``iss``, ``aud``, ``exp`` and ``nbf``. A revoked session's
token stays valid offline until it expires (10 minutes by default).

Online (``online=True``, per verifier or per call): after the offline checks, the token is also
introspected (``POST /v1/auth/introspect`` with a service key holding ``tokens:introspect``), so a
revoked session, a disabled user or a changed role is seen within ``introspection_ttl`` seconds
(2 by default; 0 asks at every request). The roles returned are the ones in force now.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ._cache import TtlCache
from ._http import AsyncHttp, SyncHttp, decode_json, service_headers
from ._jose import ACCESS_TOKEN_TYP, ASSERTION_TYP, Header, check_typ, read_header, verify_signed
from .claims import AccessClaims, AssertionClaims
from .errors import InvalidToken, Unavailable
from .jwks import AsyncJwksCache, JwksCache, JwksPolicy

INTROSPECT_PATH = "/v1/auth/introspect"
VERIFIED_TTL = 300.0
"""How long a verified token is remembered at most (it is never accepted past its ``exp``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Live:
    active: bool
    roles: tuple[str, ...] | None


def _header(token: str, typ: str) -> Header:
    header = read_header(token)
    check_typ(header, typ)
    if not header.kid:
        raise InvalidToken("token_unknown_key", "token names no key")
    return header


def _access(claims: Mapping[str, Any]) -> AccessClaims:
    try:
        return AccessClaims.from_mapping(claims)
    except (KeyError, ValueError) as e:
        raise InvalidToken("token_malformed", f"claim missing or mistyped: {e}") from e


def _assertion(claims: Mapping[str, Any]) -> AssertionClaims:
    try:
        return AssertionClaims.from_mapping(claims)
    except (KeyError, ValueError) as e:
        raise InvalidToken("token_malformed", f"claim missing or mistyped: {e}") from e


def _live(res: httpx.Response) -> _Live:
    body = decode_json(res)
    if res.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("active"), bool):
        raise Unavailable(f"introspection answered HTTP {res.status_code}")
    roles = body.get("roles")
    return _Live(
        active=body["active"],
        roles=tuple(str(r) for r in roles) if isinstance(roles, list) else None,
    )


def _apply(claims: AccessClaims, live: _Live) -> AccessClaims:
    if not live.active:
        raise InvalidToken("token_inactive", "the session is revoked or over, or the user is disabled")
    if live.roles is not None and live.roles != claims.roles:
        return dataclasses.replace(claims, roles=live.roles)
    return claims


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class _Settings:
    def __init__(
        self,
        *,
        audience: str,
        issuer: str,
        leeway: float,
        online: bool,
        service_key: str | None,
        introspection_ttl: float,
        clock: Callable[[], float],
    ) -> None:
        if not audience:
            raise ValueError("audience is required: the aud your Rampart puts in its tokens")
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.online = online
        self.service_key = service_key
        self.live: TtlCache[bytes, _Live] = TtlCache(introspection_ttl, clock=clock)
        # Tokens already verified, by digest: a repeat costs a hash and a lookup, not a
        # signature check. `exp` and `nbf` are still checked at every use.
        self.verified: TtlCache[bytes, AccessClaims] = TtlCache(VERIFIED_TTL, max_entries=10_000, clock=clock)

    def cached(self, digest: bytes) -> AccessClaims | None:
        hit = self.verified.get(digest)
        if hit is None:
            return None
        now = time.time()
        if hit.exp <= now - self.leeway:
            raise InvalidToken("token_expired", "token has expired")
        if hit.nbf > now + self.leeway:
            raise InvalidToken("token_not_yet_valid", "token is not valid yet")
        return hit

    def remember(self, digest: bytes, claims: AccessClaims) -> None:
        self.verified.put(digest, claims, ttl=max(0.0, claims.exp - time.time()))

    def online_headers(self) -> Mapping[str, str]:
        if not self.service_key:
            raise Unavailable("online verification needs a service_key holding tokens:introspect")
        return service_headers(self.service_key)


class TokenVerifier:
    """Verifies access tokens (blocking; for Django, Flask, scripts).

    ``TokenVerifier("http://127.0.0.1:8080", audience="rampart").verify(token)`` returns the
    typed claims or raises :class:`~rampart_client.errors.InvalidToken` (with its ``code``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        audience: str,
        issuer: str = "rampart",
        leeway: float = 30.0,
        online: bool = False,
        service_key: str | None = None,
        introspection_ttl: float = 2.0,
        jwks: JwksPolicy | None = None,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        http: SyncHttp | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http or SyncHttp(base_url, timeout=timeout, transport=transport)
        self.jwks = JwksCache(self._http, jwks, clock=clock)
        self._s = _Settings(
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            online=online,
            service_key=service_key,
            introspection_ttl=introspection_ttl,
            clock=clock,
        )

    def verify(self, token: str, *, online: bool | None = None) -> AccessClaims:
        s = self._s
        digest = _digest(token)
        claims = s.cached(digest)
        if claims is None:
            header = _header(token, ACCESS_TOKEN_TYP)
            key = self.jwks.key(header.kid or "")
            claims = _access(
                verify_signed(token, header, key, issuer=s.issuer, audience=s.audience, leeway=s.leeway)
            )
            s.remember(digest, claims)
        if not (s.online if online is None else online):
            return claims
        live = s.live.get(digest)
        if live is None:
            res = self._http.request(
                "POST", INTROSPECT_PATH, data={"token": token}, headers=s.online_headers()
            )
            live = _live(res)
            s.live.put(digest, live, ttl=max(0.0, claims.exp - time.time()))
        return _apply(claims, live)


class AsyncTokenVerifier:
    """Verifies access tokens without blocking the event loop (FastAPI, Starlette)."""

    def __init__(
        self,
        base_url: str,
        *,
        audience: str,
        issuer: str = "rampart",
        leeway: float = 30.0,
        online: bool = False,
        service_key: str | None = None,
        introspection_ttl: float = 2.0,
        jwks: JwksPolicy | None = None,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        http: AsyncHttp | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http or AsyncHttp(base_url, timeout=timeout, transport=transport)
        self.jwks = AsyncJwksCache(self._http, jwks, clock=clock)
        self._s = _Settings(
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            online=online,
            service_key=service_key,
            introspection_ttl=introspection_ttl,
            clock=clock,
        )

    async def verify(self, token: str, *, online: bool | None = None) -> AccessClaims:
        s = self._s
        digest = _digest(token)
        claims = s.cached(digest)
        if claims is None:
            header = _header(token, ACCESS_TOKEN_TYP)
            key = await self.jwks.key(header.kid or "")
            claims = _access(
                verify_signed(token, header, key, issuer=s.issuer, audience=s.audience, leeway=s.leeway)
            )
            s.remember(digest, claims)
        if not (s.online if online is None else online):
            return claims
        live = s.live.get(digest)
        if live is None:
            res = await self._http.request(
                "POST", INTROSPECT_PATH, data={"token": token}, headers=s.online_headers()
            )
            live = _live(res)
            s.live.put(digest, live, ttl=max(0.0, claims.exp - time.time()))
        return _apply(claims, live)


class AssertionVerifier:
    """Verifies ``X-Rampart-Jwt-Assertion`` (blocking). ``audience`` is the gateway rule's
    ``audience`` (by default Rampart uses the forwarded host). An access token is refused
    (``token_type``), as is an assertion presented as an access token."""

    HEADER = "X-Rampart-Jwt-Assertion"

    def __init__(
        self,
        base_url: str,
        *,
        audience: str,
        issuer: str = "rampart",
        leeway: float = 5.0,
        jwks: JwksPolicy | None = None,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        http: SyncHttp | None = None,
    ) -> None:
        if not audience:
            raise ValueError("audience is required")
        self._http = http or SyncHttp(base_url, timeout=timeout, transport=transport)
        self.jwks = JwksCache(self._http, jwks)
        self.audience, self.issuer, self.leeway = audience, issuer, leeway

    def verify(self, assertion: str | None) -> AssertionClaims:
        if not assertion:
            raise InvalidToken("token_missing", "no identity assertion")
        header = _header(assertion, ASSERTION_TYP)
        key = self.jwks.key(header.kid or "")
        return _assertion(
            verify_signed(
                assertion, header, key, issuer=self.issuer, audience=self.audience, leeway=self.leeway
            )
        )


class AsyncAssertionVerifier:
    """The async twin of :class:`AssertionVerifier`."""

    HEADER = "X-Rampart-Jwt-Assertion"

    def __init__(
        self,
        base_url: str,
        *,
        audience: str,
        issuer: str = "rampart",
        leeway: float = 5.0,
        jwks: JwksPolicy | None = None,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        http: AsyncHttp | None = None,
    ) -> None:
        if not audience:
            raise ValueError("audience is required")
        self._http = http or AsyncHttp(base_url, timeout=timeout, transport=transport)
        self.jwks = AsyncJwksCache(self._http, jwks)
        self.audience, self.issuer, self.leeway = audience, issuer, leeway

    async def verify(self, assertion: str | None) -> AssertionClaims:
        if not assertion:
            raise InvalidToken("token_missing", "no identity assertion")
        header = _header(assertion, ASSERTION_TYP)
        key = await self.jwks.key(header.kid or "")
        return _assertion(
            verify_signed(
                assertion, header, key, issuer=self.issuer, audience=self.audience, leeway=self.leeway
            )
        )
