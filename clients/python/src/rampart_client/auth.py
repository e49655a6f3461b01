"""``Rampart`` and ``AsyncRampart``: the token, key, role and assertion verifiers behind one
object with one HTTP connection pool, plus what every framework integration shares — reading
the credential from a request, the checks, and the HTTP answer for each refusal."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ._http import AsyncHttp, SyncHttp
from .claims import Principal
from .errors import (
    Forbidden,
    InvalidApiKey,
    InvalidToken,
    RampartError,
    StepUpRequired,
    Unavailable,
)
from .jwks import JwksPolicy
from .keys import ApiKeyVerifier, AsyncApiKeyVerifier
from .roles import AsyncRoleCache, RoleCache
from .tokens import VERIFIED_TTL, AssertionVerifier, AsyncAssertionVerifier, AsyncTokenVerifier, TokenVerifier


@dataclass(frozen=True, slots=True)
class Credential:
    kind: str  # "bearer" (an access token) or "api_key"
    value: str


def read_credential(authorization: str | None, x_api_key: str | None) -> Credential | None:
    """``Authorization: Bearer <jwt>`` is a user session; ``Authorization: Bearer rk_…`` or
    ``X-API-Key: rk_…`` is an API key (Rampart's own rules)."""
    if x_api_key:
        return Credential("api_key", x_api_key.strip())
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return Credential("api_key" if value.startswith("rk_") else "bearer", value)
    return None


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a route asks of its caller."""

    kinds: frozenset[str] = frozenset({"user"})
    permissions: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    mfa_max_age: int | None = None
    mfa: bool = False
    online: bool | None = None

    @staticmethod
    def of(
        *,
        permissions: Iterable[str] = (),
        scopes: Iterable[str] = (),
        mfa: bool = False,
        mfa_max_age: int | None = None,
        online: bool | None = None,
        users: bool | None = None,
        api_keys: bool | None = None,
    ) -> Requirement:
        scopes = tuple(scopes)
        users = (not scopes) if users is None else users
        api_keys = bool(scopes) if api_keys is None else api_keys
        kinds = frozenset(k for k, on in (("user", users), ("api_key", api_keys)) if on)
        return Requirement(
            kinds=kinds,
            permissions=tuple(permissions),
            scopes=scopes,
            mfa=mfa or mfa_max_age is not None,
            mfa_max_age=mfa_max_age,
            online=online,
        )


def check(principal: Principal, req: Requirement, now: float | None = None) -> Principal:
    """The checks after authentication: permissions (users), MFA age."""
    if req.mfa and not principal.mfa_within(req.mfa_max_age, now):
        when = f" within {req.mfa_max_age} s" if req.mfa_max_age is not None else ""
        raise StepUpRequired(f"sign in with a second factor{when}", req.mfa_max_age)
    if principal.kind == "user":
        missing = principal.missing(req.permissions)
        if missing:
            raise Forbidden("forbidden", "missing permission " + ", ".join(missing), missing)
    return principal


def _problem(status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:rampart:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def http_error(e: RampartError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The status, problem document and headers to answer for a refusal."""
    if isinstance(e, InvalidToken):
        if e.code == "token_missing":
            return (
                401,
                _problem(401, "unauthenticated", "Authentication required", str(e)),
                {"WWW-Authenticate": 'Bearer realm="rampart"'},
            )
        return (
            401,
            _problem(401, "invalid_token", "Invalid token", str(e), reason=e.code),
            {"WWW-Authenticate": 'Bearer realm="rampart", error="invalid_token"'},
        )
    if isinstance(e, InvalidApiKey):
        if e.code == "rate_limited":
            headers = {"Retry-After": str(e.retry_after)} if e.retry_after is not None else {}
            return 429, _problem(429, "rate_limited", "Too many requests", str(e)), headers
        return (
            401,
            _problem(401, "invalid_api_key", "Invalid API key", str(e), reason=e.code),
            {"WWW-Authenticate": 'Bearer realm="rampart", error="invalid_token"'},
        )
    if isinstance(e, StepUpRequired):
        params = 'Bearer realm="rampart", error="insufficient_user_authentication"'
        if e.max_age is not None:
            params += f', max_age="{e.max_age}"'
        return (
            401,
            _problem(401, e.code, "Second factor required", str(e), max_age=e.max_age),
            {"WWW-Authenticate": params},
        )
    if isinstance(e, Forbidden):
        return 403, _problem(403, e.code, "Forbidden", str(e), missing=list(e.missing) or None), {}
    if isinstance(e, Unavailable):
        return (
            503,
            _problem(503, "unavailable", "Authentication unavailable", "Rampart could not be asked"),
            {},
        )
    return 401, _problem(401, e.code, "Unauthorized", str(e)), {}


def _wrong_kind(cred: Credential | None, req: Requirement) -> RampartError:
    if cred is None:
        return InvalidToken("token_missing", "no credential")
    if cred.kind == "api_key":
        return InvalidToken("token_missing", "this route takes a user's access token, not an API key")
    return InvalidApiKey("unknown", "this route takes an API key")


class _Seen:
    """The principals of access tokens already authorized offline, by the whole
    ``Authorization`` value: a repeat of a token costs one dict lookup and the ``exp``/``nbf``
    check, not a parse, a digest and a new ``Principal``. Only for requirements whose answer
    depends on the token alone (offline, no permissions: those come from the role cache, which
    expires on its own); bounded (cleared when full). A token past ``exp`` falls through to the
    full check, which gives the refusal."""

    __slots__ = ("_items", "_leeway", "_max")

    def __init__(self, leeway: float, max_entries: int = 10_000) -> None:
        # value: the principal and until when it may be answered from here (the token
        # verifier's own cache lifetime: a key withdrawn from the JWKS is noticed as soon as
        # the verifier would notice it).
        self._items: dict[str, tuple[Principal, float]] = {}
        self._max = max_entries
        self._leeway = leeway

    def lookup(
        self, authorization: str | None, x_api_key: str | None, req: Requirement, online: bool, now: float
    ) -> tuple[str | None, Principal | None]:
        """The key this request's answer is cached under (``None``: not cacheable), and the
        cached principal if there is one."""
        online = online if req.online is None else req.online
        cacheable = not (req.permissions or online) and "user" in req.kinds
        if authorization is None or x_api_key is not None or not cacheable:
            return None, None
        return authorization, self.get(authorization, now)

    def get(self, authorization: str, now: float) -> Principal | None:
        hit = self._items.get(authorization)
        if hit is None:
            return None
        p, until = hit
        t = p.token
        if t is None or now >= until or t.exp <= now - self._leeway or t.nbf > now + self._leeway:
            return None
        return p

    def put(self, authorization: str, p: Principal, now: float) -> None:
        if len(self._items) >= self._max:
            self._items.clear()
        self._items[authorization] = (p, now + VERIFIED_TTL)


class _Config:
    def __init__(
        self,
        *,
        audience: str,
        issuer: str,
        service_key: str | None,
        online: bool,
        introspection_ttl: float,
        key_cache_ttl: float,
        roles_ttl: float,
        assertion_audience: str | None,
        leeway: float,
        jwks: JwksPolicy | None,
    ) -> None:
        self.audience = audience
        self.issuer = issuer
        self.service_key = service_key
        self.online = online
        self.introspection_ttl = introspection_ttl
        self.key_cache_ttl = key_cache_ttl
        self.roles_ttl = roles_ttl
        self.assertion_audience = assertion_audience
        self.leeway = leeway
        self.jwks = jwks


class Rampart:
    """Everything a blocking app (Django, DRF, scripts) needs, sharing one connection pool.

    ``service_key`` is an API key of a service account holding ``keys:verify`` (API keys),
    ``roles:read`` (permission checks), ``tokens:introspect`` (online mode) as needed.
    """

    def __init__(
        self,
        base_url: str,
        *,
        audience: str,
        issuer: str = "rampart",
        service_key: str | None = None,
        online: bool = False,
        introspection_ttl: float = 2.0,
        key_cache_ttl: float = 5.0,
        roles_ttl: float = 30.0,
        assertion_audience: str | None = None,
        leeway: float = 30.0,
        jwks: JwksPolicy | None = None,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = SyncHttp(base_url, timeout=timeout, transport=transport)
        self.base_url = self.http.base_url
        self.config = _Config(
            audience=audience,
            issuer=issuer,
            service_key=service_key,
            online=online,
            introspection_ttl=introspection_ttl,
            key_cache_ttl=key_cache_ttl,
            roles_ttl=roles_ttl,
            assertion_audience=assertion_audience,
            leeway=leeway,
            jwks=jwks,
        )
        self._seen = _Seen(leeway)
        self.tokens = TokenVerifier(
            base_url,
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            online=online,
            service_key=service_key,
            introspection_ttl=introspection_ttl,
            jwks=jwks,
            http=self.http,
        )
        self.keys = (
            ApiKeyVerifier(base_url, service_key=service_key, cache_ttl=key_cache_ttl, http=self.http)
            if service_key
            else None
        )
        self.roles = RoleCache(self.http, service_key, roles_ttl)
        self.assertions = (
            AssertionVerifier(base_url, audience=assertion_audience, issuer=issuer, http=self.http)
            if assertion_audience
            else None
        )

    def user(self, token: str, *, online: bool | None = None, permissions: bool = False) -> Principal:
        claims = self.tokens.verify(token, online=online)
        perms = self.roles.permissions(claims.roles) if permissions else ()
        return Principal.of_token(claims, perms)

    def api_key(self, key: str, scopes: Iterable[str] = ()) -> Principal:
        if self.keys is None:
            raise Unavailable("API keys need a service_key holding keys:verify")
        return Principal.of_key(self.keys.verify(key, scopes))

    def assertion(self, value: str | None) -> Principal:
        if self.assertions is None:
            raise Unavailable("assertions need assertion_audience")
        return Principal.of_assertion(self.assertions.verify(value))

    def authorize(self, headers: Mapping[str, str], req: Requirement) -> Principal:
        """Authenticates the request's credential as ``req`` allows, then checks it."""
        authorization, x_api_key = headers.get("authorization"), headers.get("x-api-key")
        now = time.time()
        seen, hit = self._seen.lookup(authorization, x_api_key, req, self.config.online, now)
        if hit is not None:
            return check(hit, req, now)
        cred = read_credential(authorization, x_api_key)
        if cred is None or (("user" if cred.kind == "bearer" else "api_key") not in req.kinds):
            raise _wrong_kind(cred, req)
        if cred.kind == "bearer":
            principal = self.user(cred.value, online=req.online, permissions=bool(req.permissions))
            if seen is not None:
                self._seen.put(seen, principal, now)
        else:
            principal = self.api_key(cred.value, req.scopes)
        return check(principal, req, now)

    def close(self) -> None:
        self.http.close()


class AsyncRampart:
    """The async twin of :class:`Rampart` (FastAPI, Starlette)."""

    def __init__(
        self,
        base_url: str,
        *,
        audience: str,
        issuer: str = "rampart",
        service_key: str | None = None,
        online: bool = False,
        introspection_ttl: float = 2.0,
        key_cache_ttl: float = 5.0,
        roles_ttl: float = 30.0,
        assertion_audience: str | None = None,
        leeway: float = 30.0,
        jwks: JwksPolicy | None = None,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = AsyncHttp(base_url, timeout=timeout, transport=transport)
        self.base_url = self.http.base_url
        self.config = _Config(
            audience=audience,
            issuer=issuer,
            service_key=service_key,
            online=online,
            introspection_ttl=introspection_ttl,
            key_cache_ttl=key_cache_ttl,
            roles_ttl=roles_ttl,
            assertion_audience=assertion_audience,
            leeway=leeway,
            jwks=jwks,
        )
        self._seen = _Seen(leeway)
        self.tokens = AsyncTokenVerifier(
            base_url,
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            online=online,
            service_key=service_key,
            introspection_ttl=introspection_ttl,
            jwks=jwks,
            http=self.http,
        )
        self.keys = (
            AsyncApiKeyVerifier(base_url, service_key=service_key, cache_ttl=key_cache_ttl, http=self.http)
            if service_key
            else None
        )
        self.roles = AsyncRoleCache(self.http, service_key, roles_ttl)
        self.assertions = (
            AsyncAssertionVerifier(base_url, audience=assertion_audience, issuer=issuer, http=self.http)
            if assertion_audience
            else None
        )

    async def user(self, token: str, *, online: bool | None = None, permissions: bool = False) -> Principal:
        claims = await self.tokens.verify(token, online=online)
        perms = await self.roles.permissions(claims.roles) if permissions else frozenset[str]()
        return Principal.of_token(claims, perms)

    async def api_key(self, key: str, scopes: Iterable[str] = ()) -> Principal:
        if self.keys is None:
            raise Unavailable("API keys need a service_key holding keys:verify")
        return Principal.of_key(await self.keys.verify(key, scopes))

    async def assertion(self, value: str | None) -> Principal:
        if self.assertions is None:
            raise Unavailable("assertions need assertion_audience")
        return Principal.of_assertion(await self.assertions.verify(value))

    async def authorize(self, headers: Mapping[str, str], req: Requirement) -> Principal:
        authorization, x_api_key = headers.get("authorization"), headers.get("x-api-key")
        now = time.time()
        seen, hit = self._seen.lookup(authorization, x_api_key, req, self.config.online, now)
        if hit is not None:
            return check(hit, req, now)
        cred = read_credential(authorization, x_api_key)
        if cred is None or (("user" if cred.kind == "bearer" else "api_key") not in req.kinds):
            raise _wrong_kind(cred, req)
        if cred.kind == "bearer":
            principal = await self.user(cred.value, online=req.online, permissions=bool(req.permissions))
            if seen is not None:
                self._seen.put(seen, principal, now)
        else:
            principal = await self.api_key(cred.value, req.scopes)
        return check(principal, req, now)

    async def aclose(self) -> None:
        await self.http.aclose()
