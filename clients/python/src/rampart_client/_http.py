"""Thin HTTP plumbing over httpx, sync and async, shared by the verifiers and the API client.

The async side keeps one ``httpx.AsyncClient`` (and one lock per purpose) per running event loop,
so one verifier serves an app whose tests or workers run several loops.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Mapping
from typing import Any

import httpx

from .errors import Unavailable

USER_AGENT = "rampart-client-python/0.1"


def _normalise(base_url: str) -> str:
    return base_url.rstrip("/")


def decode_json(res: httpx.Response) -> Any:
    try:
        return res.json()
    except ValueError:
        return None


class SyncHttp:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = _normalise(base_url)
        self._client = client or httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport, headers={"user-agent": USER_AGENT}
        )

    @property
    def client(self) -> httpx.Client:
        return self._client

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self._client.request(method, self.base_url + path, **kw)
        except httpx.HTTPError as e:
            raise Unavailable(f"Rampart did not answer {method} {path}: {e}") from e

    def close(self) -> None:
        self._client.close()


class AsyncHttp:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = _normalise(base_url)
        self._timeout = timeout
        self._transport = transport
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._guard = threading.Lock()

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._guard:
            c = self._clients.get(loop)
            if c is None:
                c = httpx.AsyncClient(
                    base_url=self.base_url,
                    timeout=self._timeout,
                    transport=self._transport,
                    headers={"user-agent": USER_AGENT},
                )
                self._clients[loop] = c
            return c

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return await self.client().request(method, self.base_url + path, **kw)
        except httpx.HTTPError as e:
            raise Unavailable(f"Rampart did not answer {method} {path}: {e}") from e

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        with self._guard:
            c = self._clients.pop(loop, None)
        if c is not None:
            await c.aclose()


class LoopLocks:
    """One ``asyncio.Lock`` per running event loop (an asyncio lock belongs to one loop)."""

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._guard = threading.Lock()

    def get(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._guard:
            lock = self._locks.get(loop)
            if lock is None:
                lock = asyncio.Lock()
                self._locks[loop] = lock
            return lock


def service_headers(service_key: str | None) -> Mapping[str, str]:
    return {"x-api-key": service_key} if service_key else {}
