"""Every error this package raises: token and key refusals, and the JSON API's problem documents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class RampartError(Exception):
    """The base of every error raised by ``rampart_client``; ``code`` is a stable snake_case string."""

    code: str

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InvalidToken(RampartError):
    """A bearer token or gateway assertion was refused (answer 401).

    ``code`` is one of ``token_missing``, ``token_malformed``, ``token_algorithm``, ``token_type``,
    ``token_unknown_key``, ``token_signature``, ``token_issuer``, ``token_audience``,
    ``token_expired``, ``token_not_yet_valid`` or ``token_inactive`` (online check: the session is
    revoked or over, or the user disabled).
    """


class InvalidApiKey(RampartError):
    """An API key was refused: ``code`` is ``unknown``, ``expired``, ``revoked``, ``malformed`` or
    ``rate_limited`` (answer 401, 429 for ``rate_limited``)."""

    def __init__(self, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class Forbidden(RampartError):
    """Authenticated, but not allowed (answer 403): ``code`` is ``forbidden``, ``insufficient_scope``
    or ``mfa_required``; ``missing`` names what was lacking."""

    def __init__(self, code: str, message: str, missing: tuple[str, ...] = ()) -> None:
        super().__init__(code, message)
        self.missing = missing


class Unavailable(RampartError):
    """Rampart could not be asked (network failure, 5xx, unexpected answer). Fail closed: 503."""

    def __init__(self, message: str) -> None:
        super().__init__("unavailable", message)


class ProblemError(RampartError):
    """An RFC 9457 problem document answered by Rampart's JSON API (``code`` is its stable code)."""

    status: int

    def __init__(self, status: int, body: Mapping[str, Any], request_id: str | None = None) -> None:
        code = str(body.get("code") or f"http_{status}")
        detail = str(body.get("detail") or body.get("title") or f"HTTP {status}")
        super().__init__(code, f"{detail} ({status} {code})")
        self.status = status
        self.title: str = str(body.get("title") or "")
        self.detail: str = detail
        self.type: str = str(body.get("type") or "about:blank")
        raw_errors = body.get("errors")
        self.errors: list[dict[str, Any]] = list(raw_errors) if isinstance(raw_errors, list) else []
        self.request_id = request_id or (str(body["request_id"]) if body.get("request_id") else None)
        self.body: Mapping[str, Any] = body


class BadRequest(ProblemError):
    """400: malformed input; ``errors`` lists ``{field, code, message}`` for ``validation_failed``."""


class Unauthorized(ProblemError):
    """401: no credential, or a refused one (``invalid_credentials``, ``invalid_token``…)."""


class PermissionDenied(ProblemError):
    """403: the caller lacks a permission (``forbidden``, ``ip_blocked``…)."""


class NotFound(ProblemError):
    """404."""


class Conflict(ProblemError):
    """409: e.g. ``email_taken``."""


class TooManyRequests(ProblemError):
    """429: ``rate_limited`` or ``too_many_attempts``; ``retry_after`` in seconds when sent."""

    retry_after: int | None = None


class ServerError(ProblemError):
    """5xx."""


_BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    429: TooManyRequests,
}


def problem_error(
    status: int, body: Any, request_id: str | None = None, retry_after: str | None = None
) -> ProblemError:
    """The typed exception for a non-2xx answer (``body`` is the decoded JSON, or anything else)."""
    doc: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ProblemError)
    err = cls(status, doc, request_id)
    if isinstance(err, TooManyRequests) and retry_after is not None and retry_after.isdigit():
        err.retry_after = int(retry_after)
    return err


class StepUpRequired(RampartError):
    """Signed in, but not with a second factor recently enough (answer 401 with
    ``WWW-Authenticate: Bearer error="insufficient_user_authentication"``, RFC 9470)."""

    def __init__(self, message: str, max_age: int | None) -> None:
        super().__init__("mfa_required", message)
        self.max_age = max_age
