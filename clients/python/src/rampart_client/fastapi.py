"""FastAPI dependencies.

    rampart = Rampart("http://127.0.0.1:8080", audience="rampart", service_key=KEY)
    rampart.install(app)

    @app.get("/orders")
    async def orders(user: Principal = Depends(require_permissions("orders:read"))): ...

``current_user``, ``require_user(online=True)``, ``require_permissions(...)``,
``require_scopes(...)`` (API keys), ``require_mfa(max_age=...)`` and ``gateway_identity`` are
module-level dependencies that use the instance installed on the app; the same names are
methods of ``Rampart`` for an app that prefers to hold it. Routes that use them show the
``RampartBearer`` / ``RampartApiKey`` security schemes in the app's OpenAPI document.
Refusals raise ``HTTPException`` with a problem document as ``detail`` (its ``code``), and
``WWW-Authenticate`` on 401.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from .auth import AsyncRampart, Requirement, http_error
from .claims import Principal
from .errors import RampartError

__all__ = [
    "Rampart",
    "current_user",
    "gateway_identity",
    "require_mfa",
    "require_permissions",
    "require_scopes",
    "require_user",
]

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="RampartBearer",
    bearerFormat="JWT",
    description="A Rampart access token (`Authorization: Bearer <jwt>`).",
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="RampartApiKey",
    description="A Rampart API key (`X-API-Key: rk_…`, or `Authorization: Bearer rk_…`).",
)

Dependency = Callable[..., Awaitable[Principal]]


def _raise(e: RampartError) -> HTTPException:
    status, body, headers = http_error(e)
    return HTTPException(status_code=status, detail=body, headers=headers or None)


def _installed(request: Request) -> Rampart:
    r = getattr(request.app.state, "rampart", None)
    if not isinstance(r, Rampart):
        raise RuntimeError("call Rampart(...).install(app) before using rampart_client.fastapi dependencies")
    return r


class _UserGuard(HTTPBearer):
    """A route's whole check as one dependency: being FastAPI's HTTPBearer, it puts the
    ``RampartBearer`` scheme in the OpenAPI document; its call reads the credential with
    Rampart's rules and authorizes it (one dependency, not two: it is on every request's path)."""

    def __init__(self, req: Requirement, get: Callable[[Request], Rampart]) -> None:
        super().__init__(
            auto_error=False,
            scheme_name=bearer_scheme.scheme_name,
            bearerFormat="JWT",
            description=bearer_scheme.model.description,
        )
        self.req, self.get = req, get

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        try:
            return await self.get(request).authorize(request.headers, self.req)
        except RampartError as e:
            raise _raise(e) from None


class _KeyGuard(APIKeyHeader):
    """As :class:`_UserGuard`, for routes that take API keys (the ``RampartApiKey`` scheme)."""

    def __init__(self, req: Requirement, get: Callable[[Request], Rampart]) -> None:
        super().__init__(
            name="X-API-Key",
            auto_error=False,
            scheme_name=api_key_scheme.scheme_name,
            description=api_key_scheme.model.description,
        )
        self.req, self.get = req, get

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        try:
            return await self.get(request).authorize(request.headers, self.req)
        except RampartError as e:
            raise _raise(e) from None


def _dependency(req: Requirement, get: Callable[[Request], Rampart]) -> Dependency:
    users = "user" in req.kinds
    keys = "api_key" in req.kinds
    if users and not keys:
        return _UserGuard(req, get)
    if keys and not users:
        return _KeyGuard(req, get)

    # Both kinds: both schemes are declared for the OpenAPI document.
    async def both(
        request: Request,
        _b: HTTPAuthorizationCredentials | None = Security(bearer_scheme),
        _k: str | None = Security(api_key_scheme),
    ) -> Principal:
        try:
            return await get(request).authorize(request.headers, req)
        except RampartError as e:
            raise _raise(e) from None

    return both


class Rampart(AsyncRampart):
    """An :class:`~rampart_client.AsyncRampart` that hands out FastAPI dependencies."""

    def install(self, app: FastAPI) -> Rampart:
        """Makes this instance the one the module-level dependencies use for ``app``."""
        app.state.rampart = self
        return self

    def _mine(self, _request: Request) -> Rampart:
        return self

    def require_user(self, *, online: bool | None = None) -> Dependency:
        return _dependency(Requirement.of(online=online), self._mine)

    @property
    def current_user(self) -> Dependency:
        return self.require_user()

    def require_permissions(self, *permissions: str, online: bool | None = None) -> Dependency:
        return _dependency(Requirement.of(permissions=permissions, online=online), self._mine)

    def require_scopes(self, *scopes: str) -> Dependency:
        return _dependency(Requirement.of(scopes=scopes), self._mine)

    def require_mfa(self, *, max_age: int | None = None, online: bool | None = None) -> Dependency:
        return _dependency(Requirement.of(mfa=True, mfa_max_age=max_age, online=online), self._mine)

    def gateway_identity(self) -> Callable[[Request], Awaitable[Principal]]:
        return _assertion_dependency(self._mine)


def _assertion_dependency(get: Callable[[Request], Rampart]) -> Callable[[Request], Awaitable[Principal]]:
    async def identity(request: Request) -> Principal:
        try:
            return await get(request).assertion(request.headers.get("x-rampart-jwt-assertion"))
        except RampartError as e:
            raise _raise(e) from None

    return identity


def require_user(*, online: bool | None = None) -> Dependency:
    """A signed-in user (a valid access token); ``online=True`` also asks Rampart whether the
    session is still live (revocation seen at once)."""
    return _dependency(Requirement.of(online=online), _installed)


current_user: Dependency = require_user()
"""``Depends(current_user)``: the signed-in user (offline check)."""


def require_permissions(*permissions: str, online: bool | None = None) -> Dependency:
    """A user whose roles grant every one of ``permissions`` (403 ``forbidden`` otherwise)."""
    return _dependency(Requirement.of(permissions=permissions, online=online), _installed)


def require_scopes(*scopes: str) -> Dependency:
    """An API key holding every one of ``scopes`` (403 ``insufficient_scope`` otherwise)."""
    return _dependency(Requirement.of(scopes=scopes), _installed)


def require_mfa(*, max_age: int | None = None, online: bool | None = None) -> Dependency:
    """A user who signed in with a second factor, at most ``max_age`` seconds ago (401
    ``mfa_required`` with ``WWW-Authenticate: Bearer error="insufficient_user_authentication"``)."""
    return _dependency(Requirement.of(mfa=True, mfa_max_age=max_age, online=online), _installed)


gateway_identity: Callable[[Request], Awaitable[Principal]] = _assertion_dependency(_installed)
"""``Depends(gateway_identity)``: the caller as Rampart's gateway vouched for it
(``X-Rampart-Jwt-Assertion``; needs ``assertion_audience``)."""
