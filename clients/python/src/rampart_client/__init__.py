"""Rampart for Python backends: verify access tokens (JWKS cached, EdDSA/ES256 pinned, ``iss``,
``aud``, ``exp`` checked, optional online check), gateway assertions and API keys; protect
FastAPI, Starlette and Django routes; call the JSON API.

Framework integrations live in ``rampart_client.fastapi``, ``rampart_client.starlette`` and
``rampart_client.django`` (imported on demand, so no framework is a dependency)."""

from .auth import AsyncRampart, Rampart, Requirement, read_credential
from .claims import AccessClaims, ApiKeyInfo, AssertionClaims, Principal, RateLimitState, allows
from .client import OPERATIONS, AsyncRampartClient
from .errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidApiKey,
    InvalidToken,
    NotFound,
    PermissionDenied,
    ProblemError,
    RampartError,
    ServerError,
    StepUpRequired,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)
from .jwks import AsyncJwksCache, JwksCache, JwksPolicy
from .keys import ApiKeyVerifier, AsyncApiKeyVerifier
from .sync_client import RampartClient
from .tokens import AssertionVerifier, AsyncAssertionVerifier, AsyncTokenVerifier, TokenVerifier

__version__ = "0.1.0"

__all__ = [
    "OPERATIONS",
    "AccessClaims",
    "ApiKeyInfo",
    "ApiKeyVerifier",
    "AssertionClaims",
    "AssertionVerifier",
    "AsyncApiKeyVerifier",
    "AsyncAssertionVerifier",
    "AsyncJwksCache",
    "AsyncRampart",
    "AsyncRampartClient",
    "AsyncTokenVerifier",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "InvalidApiKey",
    "InvalidToken",
    "JwksCache",
    "JwksPolicy",
    "NotFound",
    "PermissionDenied",
    "Principal",
    "ProblemError",
    "Rampart",
    "RampartClient",
    "RampartError",
    "RateLimitState",
    "Requirement",
    "ServerError",
    "StepUpRequired",
    "TokenVerifier",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "allows",
    "read_credential",
]
