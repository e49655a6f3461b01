"""Typed results: the claims of an access token or a gateway assertion, a verified API key, and
``Principal``, the one shape the framework integrations hand to a route."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal


def allows(granted: Iterable[str], needed: str) -> bool:
    """Whether any of ``granted`` allows the concrete permission ``needed`` — Rampart's own rule:
    ``*`` grants everything, ``orders:*`` every action on orders, else an exact match."""
    resource = needed.split(":", 1)[0]
    return any(g in ("*", needed) or (g.endswith(":*") and g[:-2] == resource) for g in granted)


def _strs(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def _int(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(name)
    return value


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """A verified access token (header ``typ: at+jwt``)."""

    sub: str
    """The user's id."""
    sid: str
    """The session's id (revoking the session ends the token in online mode)."""
    iss: str
    aud: str
    jti: str
    iat: int
    nbf: int
    exp: int
    roles: tuple[str, ...]
    amr: tuple[str, ...]
    """How the user signed in: ``pwd``, ``otp``, ``hwk``, ``user``; ``mfa`` after more than one factor."""
    auth_time: int | None
    """When the user signed in (the session's start, kept across refreshes); ``None`` on older tokens."""
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_mapping(cls, c: Mapping[str, Any]) -> AccessClaims:
        auth_time = c.get("auth_time")
        return cls(
            sub=str(c["sub"]),
            sid=str(c.get("sid", "")),
            iss=str(c["iss"]),
            aud=str(c["aud"]),
            jti=str(c.get("jti", "")),
            iat=_int(c, "iat"),
            nbf=_int(c, "nbf"),
            exp=_int(c, "exp"),
            roles=_strs(c.get("roles")),
            amr=_strs(c.get("amr")),
            auth_time=auth_time if isinstance(auth_time, int) and not isinstance(auth_time, bool) else None,
            raw=dict(c),
        )


@dataclass(frozen=True, slots=True)
class AssertionClaims:
    """A verified gateway identity assertion (header ``typ: rampart-assertion+jwt``, 60 s)."""

    sub: str
    """A user id, ``apikey:<id>``, or ``anonymous`` on a public route."""
    sid: str | None
    iss: str
    aud: str
    jti: str
    iat: int
    nbf: int
    exp: int
    roles: tuple[str, ...]
    permissions: tuple[str, ...]
    amr: tuple[str, ...]
    rule: str
    """The id of the gateway rule that let the request in."""
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def anonymous(self) -> bool:
        return self.sub == "anonymous"

    @property
    def api_key_id(self) -> str | None:
        return self.sub[len("apikey:") :] if self.sub.startswith("apikey:") else None

    @classmethod
    def from_mapping(cls, c: Mapping[str, Any]) -> AssertionClaims:
        sid = c.get("sid")
        return cls(
            sub=str(c["sub"]),
            sid=str(sid) if sid else None,
            iss=str(c["iss"]),
            aud=str(c["aud"]),
            jti=str(c.get("jti", "")),
            iat=_int(c, "iat"),
            nbf=_int(c, "nbf"),
            exp=_int(c, "exp"),
            roles=_strs(c.get("roles")),
            permissions=_strs(c.get("permissions")),
            amr=_strs(c.get("amr")),
            rule=str(c.get("rule", "")),
            raw=dict(c),
        )


@dataclass(frozen=True, slots=True)
class RateLimitState:
    limit: int
    remaining: int
    reset_seconds: int


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """A key ``/v1/keys/verify`` found valid."""

    key_id: str
    owner_id: str
    scopes: tuple[str, ...]
    expires_at: str | None
    ratelimit: RateLimitState | None

    def allows(self, scope: str) -> bool:
        return allows(self.scopes, scope)

    @classmethod
    def from_mapping(cls, v: Mapping[str, Any]) -> ApiKeyInfo:
        rl = v.get("ratelimit")
        state = None
        if isinstance(rl, Mapping):
            state = RateLimitState(int(rl["limit"]), int(rl["remaining"]), int(rl["reset_seconds"]))
        expires = v.get("expires_at")
        return cls(
            key_id=str(v["key_id"]),
            owner_id=str(v["owner_id"]),
            scopes=_strs(v.get("scopes")),
            expires_at=str(expires) if expires else None,
            ratelimit=state,
        )


PrincipalKind = Literal["user", "api_key", "assertion"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, whatever the credential: what a protected route receives.

    ``id`` is the user's id (for an API key: its owner's); ``permissions`` are what the caller
    may do — resolved from the token's roles for a user (when a service key may read the roles),
    the key's scopes for an API key, the assertion's ``permissions`` for a gateway assertion.
    """

    kind: PrincipalKind
    id: str
    session_id: str | None
    roles: tuple[str, ...]
    permissions: frozenset[str]
    amr: tuple[str, ...]
    auth_time: int | None
    token: AccessClaims | None = None
    key: ApiKeyInfo | None = None
    assertion: AssertionClaims | None = None

    def allows(self, permission: str) -> bool:
        return allows(self.permissions, permission)

    def missing(self, permissions: Iterable[str]) -> tuple[str, ...]:
        return tuple(p for p in permissions if not self.allows(p))

    @property
    def mfa(self) -> bool:
        """Signed in with more than one factor."""
        return "mfa" in self.amr

    def mfa_within(self, max_age: float | None, now: float | None = None) -> bool:
        """Signed in with more than one factor, at most ``max_age`` seconds ago (``None``: ever)."""
        if not self.mfa:
            return False
        if max_age is None:
            return True
        if self.auth_time is None:
            return False
        return (now if now is not None else time.time()) - self.auth_time <= max_age

    @classmethod
    def of_token(cls, claims: AccessClaims, permissions: Iterable[str] = ()) -> Principal:
        return cls(
            kind="user",
            id=claims.sub,
            session_id=claims.sid or None,
            roles=claims.roles,
            permissions=frozenset(permissions),
            amr=claims.amr,
            auth_time=claims.auth_time,
            token=claims,
        )

    @classmethod
    def of_key(cls, key: ApiKeyInfo) -> Principal:
        return cls(
            kind="api_key",
            id=key.owner_id,
            session_id=None,
            roles=(),
            permissions=frozenset(key.scopes),
            amr=(),
            auth_time=None,
            key=key,
        )

    @classmethod
    def of_assertion(cls, a: AssertionClaims) -> Principal:
        return cls(
            kind="assertion",
            id=a.sub,
            session_id=a.sid,
            roles=a.roles,
            permissions=frozenset(a.permissions),
            amr=a.amr,
            auth_time=None,
            assertion=a,
        )
