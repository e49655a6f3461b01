"""What a user's roles grant: the role definitions read from Rampart (``GET /v1/admin/roles``,
the service key holding ``roles:read``) and cached for ``ttl`` seconds (default 30), so a
permission check costs no request. A role Rampart does not know grants nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

import httpx

from ._http import AsyncHttp, LoopLocks, SyncHttp, decode_json, service_headers
from .errors import Unavailable

ROLES_PATH = "/v1/admin/roles"


def _parse(res: httpx.Response) -> dict[str, frozenset[str]]:
    body = decode_json(res)
    items = body.get("items") if isinstance(body, Mapping) else None
    if res.status_code != 200 or not isinstance(items, list):
        raise Unavailable(
            f"{ROLES_PATH} answered HTTP {res.status_code} (does the service key hold roles:read?)"
        )
    roles: dict[str, frozenset[str]] = {}
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            perms = item.get("permissions")
            roles[item["name"]] = frozenset(str(p) for p in perms) if isinstance(perms, list) else frozenset()
    return roles


class _Base:
    def __init__(self, service_key: str | None, ttl: float, clock: Callable[[], float]) -> None:
        self._headers = service_headers(service_key)
        self._service_key = service_key
        self.ttl = ttl
        self._clock = clock
        self._roles: dict[str, frozenset[str]] | None = None
        self._at = 0.0
        self.fetches = 0

    def _fresh(self) -> dict[str, frozenset[str]] | None:
        if self._roles is not None and self._clock() - self._at < self.ttl:
            return self._roles
        return None

    def _check(self) -> None:
        if not self._service_key:
            raise Unavailable("permission checks need a service_key holding roles:read")

    def _store(self, roles: dict[str, frozenset[str]]) -> None:
        self._roles, self._at = roles, self._clock()
        self.fetches += 1

    @staticmethod
    def _union(table: Mapping[str, frozenset[str]], roles: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for r in roles:
            out |= table.get(r, frozenset())
        return frozenset(out)


class RoleCache(_Base):
    def __init__(
        self,
        http: SyncHttp,
        service_key: str | None,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(service_key, ttl, clock)
        self._http = http

    def permissions(self, roles: Iterable[str]) -> frozenset[str]:
        table = self._fresh()
        if table is None:
            self._check()
            try:
                self._store(_parse(self._http.request("GET", ROLES_PATH, headers=self._headers)))
            except Unavailable:
                if self._roles is None:
                    raise
            table = self._roles or {}
        return self._union(table, roles)


class AsyncRoleCache(_Base):
    def __init__(
        self,
        http: AsyncHttp,
        service_key: str | None,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(service_key, ttl, clock)
        self._http = http
        self._locks = LoopLocks()

    async def permissions(self, roles: Iterable[str]) -> frozenset[str]:
        table = self._fresh()
        if table is None:
            self._check()
            async with self._locks.get():
                table = self._fresh()
                if table is None:
                    try:
                        res = await self._http.request("GET", ROLES_PATH, headers=self._headers)
                        self._store(_parse(res))
                    except Unavailable:
                        if self._roles is None:
                            raise
                    table = self._roles or {}
        return self._union(table, roles)
