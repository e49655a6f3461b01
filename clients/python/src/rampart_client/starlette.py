"""Starlette: an authentication backend (so ``request.user`` / ``request.auth`` and Starlette's
own ``@requires`` work) and a middleware that installs it.

    app = Starlette(routes=..., middleware=[Middleware(RampartMiddleware, rampart=AsyncRampart(...))])

``request.user`` is a :class:`RampartUser` (its ``principal`` is the
:class:`~rampart_client.Principal`); ``request.auth.scopes`` holds ``authenticated`` and the
caller's permissions (an API key's scopes). A request without a credential goes on
unauthenticated; one with a refused credential is answered 401 (problem+json) at once.
Use :func:`requires` for permission checks that honour wildcards (``orders:*``).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError, BaseUser
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from .auth import AsyncRampart, http_error, read_credential
from .claims import Principal
from .errors import Forbidden, InvalidToken, RampartError, StepUpRequired


class RampartUser(BaseUser):
    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.id

    @property
    def identity(self) -> str:
        return self.principal.id


class _Refused(AuthenticationError):
    def __init__(self, error: RampartError) -> None:
        super().__init__(str(error))
        self.error = error


class RampartBackend(AuthenticationBackend):
    def __init__(
        self, rampart: AsyncRampart, *, online: bool | None = None, permissions: bool | None = None
    ) -> None:
        self.rampart = rampart
        self.online = online
        # Users' permissions come from their roles, read with the service key (roles:read).
        self.permissions = rampart.config.service_key is not None if permissions is None else permissions

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        cred = read_credential(conn.headers.get("authorization"), conn.headers.get("x-api-key"))
        if cred is None:
            return None
        try:
            if cred.kind == "bearer":
                principal = await self.rampart.user(
                    cred.value, online=self.online, permissions=self.permissions
                )
            else:
                principal = await self.rampart.api_key(cred.value)
        except RampartError as e:
            raise _Refused(e) from None
        scopes = ["authenticated", *sorted(principal.permissions)]
        return AuthCredentials(scopes), RampartUser(principal)


def problem_response(error: RampartError) -> JSONResponse:
    status, body, headers = http_error(error)
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")


def on_auth_error(_conn: HTTPConnection, exc: AuthenticationError) -> Response:
    if isinstance(exc, _Refused):
        return problem_response(exc.error)
    return JSONResponse({"detail": str(exc)}, status_code=401)


class RampartMiddleware(AuthenticationMiddleware):
    def __init__(
        self, app: ASGIApp, rampart: AsyncRampart, online: bool | None = None, permissions: bool | None = None
    ) -> None:
        super().__init__(
            app,
            backend=RampartBackend(rampart, online=online, permissions=permissions),
            on_error=on_auth_error,
        )


def principal_of(request: Request) -> Principal | None:
    user = request.scope.get("user")
    return user.principal if isinstance(user, RampartUser) else None


def requires(
    *permissions: str, mfa_max_age: int | None = None, mfa: bool = False
) -> Callable[[Callable[[Request], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]]:
    """An endpoint decorator: 401 without a credential, 403 without every permission (wildcards
    honoured), 401 ``mfa_required`` without a recent enough second factor."""

    def decorate(
        endpoint: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(endpoint)
        async def wrapper(request: Request) -> Response:
            principal = principal_of(request)
            if principal is None:
                return problem_response(InvalidToken("token_missing", "authentication required"))
            if (mfa or mfa_max_age is not None) and not principal.mfa_within(mfa_max_age):
                return problem_response(StepUpRequired("sign in with a second factor", mfa_max_age))
            missing = principal.missing(permissions)
            if missing:
                return problem_response(Forbidden("forbidden", "missing " + ", ".join(missing), missing))
            return await endpoint(request)

        return wrapper

    return decorate
