"""The JWKS, fetched and cached: refreshed when older than ``max_age``, and refetched when a
token names an unknown ``kid`` — at most once per ``min_refetch_interval``, however many such
tokens arrive (a stream of made-up ``kid`` values cannot turn into a stream of fetches).
Concurrent callers share one fetch. If a refresh fails, the keys already held stay in use."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ._http import AsyncHttp, LoopLocks, SyncHttp, decode_json
from ._jose import VerifyingKey, parse_jwks
from .errors import InvalidToken, Unavailable

JWKS_PATH = "/.well-known/jwks.json"


@dataclass
class JwksPolicy:
    max_age: float = 300.0
    """Refresh the whole set when it is older than this (seconds)."""
    min_refetch_interval: float = 30.0
    """An unknown ``kid`` triggers a refetch only if the last fetch is at least this old."""


@dataclass
class _State:
    policy: JwksPolicy
    clock: Callable[[], float]
    keys: dict[str, VerifyingKey] = field(default_factory=dict)
    fetched_at: float | None = None
    attempted_at: float | None = None
    fetches: int = 0

    def usable(self, kid: str) -> VerifyingKey | None:
        if self.fetched_at is None or self.clock() - self.fetched_at >= self.policy.max_age:
            return None
        return self.keys.get(kid)

    def should_fetch(self, kid: str) -> bool:
        now = self.clock()
        if self.fetched_at is None or now - self.fetched_at >= self.policy.max_age:
            # Stale or never fetched: at most one attempt a second while Rampart fails to answer.
            return self.attempted_at is None or now - self.attempted_at >= 1.0
        if kid in self.keys:
            return False
        return self.attempted_at is None or now - self.attempted_at >= self.policy.min_refetch_interval

    def begin(self) -> None:
        self.attempted_at = self.clock()
        self.fetches += 1

    def store(self, keys: dict[str, VerifyingKey]) -> None:
        self.keys = keys
        self.fetched_at = self.clock()

    def result(self, kid: str) -> VerifyingKey:
        key = self.keys.get(kid)
        if key is None:
            if not self.keys and self.fetched_at is None:
                raise Unavailable("no JWKS could be fetched from Rampart")
            raise InvalidToken("token_unknown_key", "token is signed by an unknown key")
        return key


def _parse(status: int, body: object) -> dict[str, VerifyingKey]:
    if status != 200:
        raise Unavailable(f"JWKS answered HTTP {status}")
    try:
        return parse_jwks(body)
    except ValueError as e:
        raise Unavailable(f"JWKS is unreadable: {e}") from e


class JwksCache:
    """Blocking JWKS cache (thread-safe)."""

    def __init__(
        self,
        http: SyncHttp,
        policy: JwksPolicy | None = None,
        path: str = JWKS_PATH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._path = path
        self._state = _State(policy or JwksPolicy(), clock)
        self._lock = threading.Lock()

    @property
    def fetches(self) -> int:
        """How many times the JWKS was fetched (for tests and metrics)."""
        return self._state.fetches

    def key(self, kid: str) -> VerifyingKey:
        hit = self._state.usable(kid)
        if hit is not None:
            return hit
        with self._lock:
            if self._state.should_fetch(kid):
                self._state.begin()
                try:
                    res = self._http.request("GET", self._path)
                    self._state.store(_parse(res.status_code, decode_json(res)))
                except Unavailable:
                    if not self._state.keys:
                        raise
            return self._state.result(kid)


class AsyncJwksCache:
    """Non-blocking JWKS cache (one fetch at a time per event loop)."""

    def __init__(
        self,
        http: AsyncHttp,
        policy: JwksPolicy | None = None,
        path: str = JWKS_PATH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._path = path
        self._state = _State(policy or JwksPolicy(), clock)
        self._locks = LoopLocks()

    @property
    def fetches(self) -> int:
        return self._state.fetches

    async def key(self, kid: str) -> VerifyingKey:
        hit = self._state.usable(kid)
        if hit is not None:
            return hit
        async with self._locks.get():
            if self._state.should_fetch(kid):
                self._state.begin()
                try:
                    res = await self._http.request("GET", self._path)
                    self._state.store(_parse(res.status_code, decode_json(res)))
                except Unavailable:
                    if not self._state.keys:
                        raise
            return self._state.result(kid)
