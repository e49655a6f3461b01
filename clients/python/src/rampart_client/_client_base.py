"""The plumbing under the JSON API clients: credentials, the request, problem documents raised
as typed exceptions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import httpx

from ._http import USER_AGENT
from .errors import Unavailable, problem_error

JsonObject = dict[str, Any]


def body(**fields: Any) -> JsonObject:
    """A request body without the fields left as ``None``."""
    return {k: v for k, v in fields.items() if v is not None}


def query(**params: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in params.items():
        if v is None:
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


def _headers(token: str | None, api_key: str | None, csrf: str | None) -> dict[str, str]:
    h = {"user-agent": USER_AGENT, "accept": "application/json, application/problem+json"}
    if token:
        h["authorization"] = f"Bearer {token}"
    if api_key:
        h["x-api-key"] = api_key
    if csrf:
        h["x-csrf-token"] = csrf
    return h


def redirect_of(res: httpx.Response) -> JsonObject:
    """A redirect's target and the cookies it set (``Set-Cookie`` values, name=value only)."""
    cookies = [c.split(";", 1)[0] for c in res.headers.get_list("set-cookie")]
    return {"location": res.headers.get("location"), "cookies": cookies}


def result(res: httpx.Response, raw: bool = False) -> Any:
    if res.status_code >= 400:
        try:
            doc = res.json()
        except ValueError:
            doc = None
        raise problem_error(
            res.status_code, doc, res.headers.get("x-request-id"), res.headers.get("retry-after")
        )
    if raw:
        return res.text
    if res.status_code == 204 or not res.content:
        return None
    try:
        return res.json()
    except ValueError as e:
        raise Unavailable(f"unexpected non-JSON answer ({res.status_code})") from e


class _Settings:
    def __init__(self, token: str | None, api_key: str | None, csrf: str | None) -> None:
        self.token, self.api_key, self.csrf = token, api_key, csrf

    def headers(self) -> Mapping[str, str]:
        return _headers(self.token, self.api_key, self.csrf)


class AsyncBase:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        api_key: str | None = None,
        csrf_token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = _Settings(token, api_key, csrf_token)
        self._client = client or httpx.AsyncClient(timeout=timeout, transport=transport)

    def with_token(self, token: str | None) -> Self:
        """A client for the same server and connection pool, acting with ``token``."""
        return type(self)(self.base_url, token=token, client=self._client)

    def with_api_key(self, api_key: str | None) -> Self:
        return type(self)(self.base_url, api_key=api_key, client=self._client)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        raw: bool = False,
        content_type: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        redirect: bool = False,
    ) -> Any:
        headers = dict(self._auth.headers())
        headers.update(extra_headers or {})
        content: bytes | None = None
        if content_type is not None:
            import json as _json

            headers["content-type"] = content_type
            content = _json.dumps(json).encode()
            json = None
        try:
            res = await self._client.request(
                method,
                self.base_url + path,
                json=json,
                data=data,
                params=params,
                headers=headers,
                content=content,
            )
        except httpx.HTTPError as e:
            raise Unavailable(f"Rampart did not answer {method} {path}: {e}") from e
        if redirect and res.status_code in (302, 303):
            return redirect_of(res)
        return result(res, raw)

    async def _json(self, method: str, path: str, **kw: Any) -> JsonObject:
        answer = await self._call(method, path, **kw)
        if not isinstance(answer, dict):
            raise Unavailable(f"{method} {path}: expected a JSON object")
        return answer

    async def _text(self, method: str, path: str, **kw: Any) -> str:
        return str(await self._call(method, path, raw=True, **kw))

    async def aclose(self) -> None:
        await self._client.aclose()


class SyncBase:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        api_key: str | None = None,
        csrf_token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = _Settings(token, api_key, csrf_token)
        self._client = client or httpx.Client(timeout=timeout, transport=transport)

    def with_token(self, token: str | None) -> Self:
        return type(self)(self.base_url, token=token, client=self._client)

    def with_api_key(self, api_key: str | None) -> Self:
        return type(self)(self.base_url, api_key=api_key, client=self._client)

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        raw: bool = False,
        content_type: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        redirect: bool = False,
    ) -> Any:
        headers = dict(self._auth.headers())
        headers.update(extra_headers or {})
        content: bytes | None = None
        if content_type is not None:
            import json as _json

            headers["content-type"] = content_type
            content = _json.dumps(json).encode()
            json = None
        try:
            res = self._client.request(
                method,
                self.base_url + path,
                json=json,
                data=data,
                params=params,
                headers=headers,
                content=content,
            )
        except httpx.HTTPError as e:
            raise Unavailable(f"Rampart did not answer {method} {path}: {e}") from e
        if redirect and res.status_code in (302, 303):
            return redirect_of(res)
        return result(res, raw)

    def _json(self, method: str, path: str, **kw: Any) -> JsonObject:
        answer = self._call(method, path, **kw)
        if not isinstance(answer, dict):
            raise Unavailable(f"{method} {path}: expected a JSON object")
        return answer

    def _text(self, method: str, path: str, **kw: Any) -> str:
        return str(self._call(method, path, raw=True, **kw))

    def close(self) -> None:
        self._client.close()
