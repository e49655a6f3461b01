"""API keys, checked with Rampart (``POST /v1/keys/verify``, the service key holding
``keys:verify``), sync and async.

Each answer is cached for ``cache_ttl`` seconds (default 5) per key and scope, under a hash of
the key: a revoked key is refused within that time, and a key's own rate limit counts the
verifications Rampart sees (one per cache miss; ``cache_ttl=0`` counts every request). A
``rate_limited`` answer is never cached. Strings that cannot be keys are refused without a call.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from ._cache import TtlCache
from ._http import AsyncHttp, SyncHttp, decode_json, service_headers
from .claims import ApiKeyInfo
from .errors import Forbidden, InvalidApiKey, Unavailable

VERIFY_PATH = "/v1/keys/verify"
_SHAPE = re.compile(r"^rk_[A-Za-z0-9]{46}$")

_Answer = ApiKeyInfo | tuple[str, int | None]


def looks_like_key(value: str) -> bool:
    return bool(_SHAPE.match(value))


def _scopes(scopes: Iterable[str]) -> list[str | None]:
    wanted: list[str | None] = list(dict.fromkeys(scopes))
    return wanted or [None]


def _answer(res: httpx.Response) -> _Answer:
    body = decode_json(res)
    if res.status_code != 200 or not isinstance(body, Mapping) or not isinstance(body.get("valid"), bool):
        raise Unavailable(f"/v1/keys/verify answered HTTP {res.status_code}")
    if body["valid"]:
        return ApiKeyInfo.from_mapping(body)
    retry = None
    rl: Any = body.get("ratelimit")
    if isinstance(rl, Mapping) and isinstance(rl.get("reset_seconds"), int):
        retry = int(rl["reset_seconds"])
    return (str(body.get("code") or "unknown"), retry)


def _raise(answer: tuple[str, int | None], scope: str | None) -> None:
    code, retry = answer
    if code == "insufficient_scope":
        raise Forbidden("insufficient_scope", f"the key lacks the scope {scope}", (scope or "",))
    raise InvalidApiKey(code, f"API key refused: {code}", retry_after=retry)


class _Base:
    def __init__(self, service_key: str, cache_ttl: float, clock: Callable[[], float]) -> None:
        if not service_key:
            raise ValueError("service_key (an API key holding keys:verify) is required")
        self._headers = service_headers(service_key)
        self._cache: TtlCache[tuple[bytes, str | None], _Answer] = TtlCache(cache_ttl, clock=clock)

    def _cached(self, key: str, scope: str | None) -> tuple[tuple[bytes, str | None], _Answer | None]:
        if not looks_like_key(key):
            raise InvalidApiKey("malformed", "not an API key")
        ck = (hashlib.sha256(key.encode()).digest(), scope)
        return ck, self._cache.get(ck)

    def _keep(self, ck: tuple[bytes, str | None], answer: _Answer) -> None:
        if not (isinstance(answer, tuple) and answer[0] == "rate_limited"):
            self._cache.put(ck, answer)


class ApiKeyVerifier(_Base):
    """``ApiKeyVerifier(url, service_key=...).verify("rk_…", scopes=["orders:read"])`` returns the
    key's :class:`ApiKeyInfo` or raises ``InvalidApiKey`` / ``Forbidden("insufficient_scope")``."""

    def __init__(
        self,
        base_url: str,
        *,
        service_key: str,
        cache_ttl: float = 5.0,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        http: SyncHttp | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(service_key, cache_ttl, clock)
        self._http = http or SyncHttp(base_url, timeout=timeout, transport=transport)

    def verify(self, key: str, scopes: Iterable[str] = ()) -> ApiKeyInfo:
        info: ApiKeyInfo | None = None
        for scope in _scopes(scopes):
            ck, answer = self._cached(key, scope)
            if answer is None:
                body: dict[str, Any] = {"key": key} if scope is None else {"key": key, "scope": scope}
                answer = _answer(self._http.request("POST", VERIFY_PATH, json=body, headers=self._headers))
                self._keep(ck, answer)
            if isinstance(answer, tuple):
                _raise(answer, scope)
            else:
                info = answer
        assert info is not None
        return info


class AsyncApiKeyVerifier(_Base):
    """The async twin of :class:`ApiKeyVerifier`."""

    def __init__(
        self,
        base_url: str,
        *,
        service_key: str,
        cache_ttl: float = 5.0,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        http: AsyncHttp | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(service_key, cache_ttl, clock)
        self._http = http or AsyncHttp(base_url, timeout=timeout, transport=transport)

    async def verify(self, key: str, scopes: Iterable[str] = ()) -> ApiKeyInfo:
        info: ApiKeyInfo | None = None
        for scope in _scopes(scopes):
            ck, answer = self._cached(key, scope)
            if answer is None:
                body: dict[str, Any] = {"key": key} if scope is None else {"key": key, "scope": scope}
                res = await self._http.request("POST", VERIFY_PATH, json=body, headers=self._headers)
                answer = _answer(res)
                self._keep(ck, answer)
            if isinstance(answer, tuple):
                _raise(answer, scope)
            else:
                info = answer
        assert info is not None
        return info
