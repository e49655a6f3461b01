"""Django: a middleware, a view decorator, and Django REST framework classes.

Settings::

    RAMPART = {
        "URL": "http://127.0.0.1:8080",
        "AUDIENCE": "rampart",
        "SERVICE_KEY": os.environ.get("RAMPART_SERVICE_KEY"),  # keys:verify, roles:read, tokens:introspect
        "ONLINE": False,               # True: every check also asks whether the session is live
        # optional: "ISSUER", "INTROSPECTION_TTL", "KEY_CACHE_TTL", "ROLES_TTL", "ASSERTION_AUDIENCE"
    }
    MIDDLEWARE = [..., "rampart_client.django.RampartMiddleware"]

The middleware sets ``request.rampart`` (a :class:`~rampart_client.Principal` or ``None``) and
answers 401 at once for a presented credential that is refused. ``@rampart_required(...)``
protects a view; ``RampartAuthentication`` and ``RampartPermission`` serve DRF views.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from .auth import Rampart, Requirement, check, http_error, read_credential
from .claims import Principal
from .errors import RampartError

_lock = threading.Lock()
_instance: Rampart | None = None

V = TypeVar("V", bound=Callable[..., HttpResponse])


def get_rampart() -> Rampart:
    """The one :class:`Rampart` built from ``settings.RAMPART``."""
    global _instance
    with _lock:
        if _instance is None:
            conf: dict[str, Any] = dict(getattr(settings, "RAMPART", {}))
            _instance = Rampart(
                conf["URL"],
                audience=conf["AUDIENCE"],
                issuer=conf.get("ISSUER", "rampart"),
                service_key=conf.get("SERVICE_KEY"),
                online=bool(conf.get("ONLINE", False)),
                introspection_ttl=float(conf.get("INTROSPECTION_TTL", 2.0)),
                key_cache_ttl=float(conf.get("KEY_CACHE_TTL", 5.0)),
                roles_ttl=float(conf.get("ROLES_TTL", 30.0)),
                assertion_audience=conf.get("ASSERTION_AUDIENCE"),
            )
        return _instance


def reset() -> None:
    """Forget the instance (tests that change ``settings.RAMPART``)."""
    global _instance
    with _lock:
        if _instance is not None:
            _instance.close()
        _instance = None


def principal_of(request: Any) -> Principal:
    """The caller of a protected view: ``request.rampart`` (middleware, decorator) or, under DRF,
    ``request.auth``. Raises ``LookupError`` on an unauthenticated request."""
    for candidate in (getattr(request, "auth", None), getattr(request, "rampart", None)):
        if isinstance(candidate, Principal):
            return candidate
    raise LookupError("no Rampart principal on this request")


def problem_response(error: RampartError) -> JsonResponse:
    status, body, headers = http_error(error)
    res = JsonResponse(body, status=status, content_type="application/problem+json")
    for name, value in headers.items():
        res[name] = value
    return res


def _authenticate(request: HttpRequest) -> Principal | None:
    cred = read_credential(request.headers.get("Authorization"), request.headers.get("X-API-Key"))
    if cred is None:
        return None
    r = get_rampart()
    return r.user(cred.value) if cred.kind == "bearer" else r.api_key(cred.value)


class RampartMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.rampart = _authenticate(request)  # type: ignore[attr-defined]
        except RampartError as e:
            return problem_response(e)
        return self.get_response(request)


def rampart_required(
    *permissions: str,
    scopes: Iterable[str] = (),
    mfa_max_age: int | None = None,
    mfa: bool = False,
    online: bool | None = None,
    api_keys: bool | None = None,
) -> Callable[[V], V]:
    """Protects a view: a user (``permissions`` from their roles) or, with ``scopes``, an API key.
    Sets ``request.rampart``."""
    req = Requirement.of(
        permissions=permissions,
        scopes=scopes,
        mfa=mfa,
        mfa_max_age=mfa_max_age,
        online=online,
        api_keys=api_keys,
    )

    def decorate(view: V) -> V:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                principal = get_rampart().authorize(request.headers, req)
            except RampartError as e:
                return problem_response(e)
            request.rampart = principal  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return cast(V, wrapper)

    return decorate


# --- Django REST framework -------------------------------------------------------------------

# DRF is optional. `rest_framework.views` and `.request` are imported for types only: importing
# them here would read DRF's settings, which name the classes below (a circular import).
if TYPE_CHECKING:
    from rest_framework.request import Request as DrfRequest
    from rest_framework.views import APIView

if importlib.util.find_spec("rest_framework") is not None:
    from rest_framework import exceptions as drf_exceptions
    from rest_framework.authentication import BaseAuthentication
    from rest_framework.permissions import BasePermission

    class RampartUser:
        """``request.user`` under DRF: authenticated, with the :class:`Principal`."""

        is_authenticated = True
        is_anonymous = False
        is_active = True

        def __init__(self, principal: Principal) -> None:
            self.principal = principal
            self.pk = self.id = principal.id

        def __str__(self) -> str:
            return self.principal.id

    class RampartAuthFailed(drf_exceptions.APIException):
        def __init__(self, error: RampartError) -> None:
            status, body, headers = http_error(error)
            super().__init__(detail=body.get("detail"), code=body["code"])
            self.status_code = status
            self.problem = body
            self.auth_header = headers.get("WWW-Authenticate")

    class RampartAuthentication(BaseAuthentication):
        """``authentication_classes = [RampartAuthentication]``: a bearer access token or an API
        key; ``request.auth`` is the :class:`Principal`. A refused credential is 401."""

        def authenticate(self, request: DrfRequest) -> tuple[RampartUser, Principal] | None:
            try:
                principal = _authenticate(request._request)
            except RampartError as e:
                raise drf_exceptions.AuthenticationFailed(detail=str(e), code=e.code) from None
            if principal is None:
                return None
            return RampartUser(principal), principal

        def authenticate_header(self, request: DrfRequest) -> str:
            return 'Bearer realm="rampart"'

    class RampartPermission(BasePermission):
        """``permission_classes = [RampartPermission]`` with ``rampart_permissions = [...]``
        (users, from their roles), ``rampart_scopes = [...]`` (API keys) and
        ``rampart_mfa_max_age`` on the view."""

        message = "Forbidden"

        def has_permission(self, request: DrfRequest, view: APIView) -> bool:
            principal = request.auth
            if not isinstance(principal, Principal):
                raise drf_exceptions.NotAuthenticated()
            perms = tuple(getattr(view, "rampart_permissions", ()))
            scopes = tuple(getattr(view, "rampart_scopes", ()))
            mfa_max_age = getattr(view, "rampart_mfa_max_age", None)
            r = get_rampart()
            try:
                if principal.kind == "api_key":
                    if not scopes:
                        raise drf_exceptions.PermissionDenied("this view takes a user's access token")
                    key = request._request.headers.get("X-API-Key") or _bearer(request)
                    principal = r.api_key(key, scopes)
                elif scopes and not perms:
                    raise drf_exceptions.PermissionDenied("this view takes an API key")
                else:
                    if perms and principal.token is not None:
                        principal = Principal.of_token(principal.token, r.roles.permissions(principal.roles))
                    check(principal, Requirement.of(permissions=perms, mfa_max_age=mfa_max_age))
            except RampartError as e:
                raise RampartAuthFailed(e) from None
            request.auth = principal
            return True

    def _bearer(request: DrfRequest) -> str:
        cred = read_credential(request._request.headers.get("Authorization"), None)
        return cred.value if cred else ""
