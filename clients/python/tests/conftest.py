"""Shared fixtures. Unit tests need nothing; the live tests need a running Rampart, described by
the environment the Rust harness (crates/rampart/tests/it/clients.rs) sets:

RAMPART_URL, RAMPART_AUDIENCE, RAMPART_SERVICE_KEY, RAMPART_WRITER_EMAIL, RAMPART_READER_EMAIL,
RAMPART_PASSWORD, RAMPART_KEY_READ, RAMPART_KEY_WRITE, RAMPART_TOKEN_OTHER_AUDIENCE,
RAMPART_TOKEN_EXPIRED, RAMPART_TOKEN_MFA_FRESH, RAMPART_TOKEN_MFA_OLD, RAMPART_ADMIN_EMAIL.
Without RAMPART_URL the live tests skip (and fail under CI=true).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import httpx
import pytest


@dataclass(frozen=True)
class Live:
    url: str
    audience: str
    service_key: str
    writer_email: str
    reader_email: str
    admin_email: str
    password: str
    key_read: str
    key_write: str
    token_other_audience: str
    token_expired: str
    token_mfa_fresh: str
    token_mfa_old: str

    def login(self, email: str) -> dict[str, str]:
        res = httpx.post(f"{self.url}/v1/auth/login", json={"email": email, "password": self.password})
        assert res.status_code == 200, res.text
        body: dict[str, str] = res.json()
        return body


@pytest.fixture(scope="session")
def live() -> Live:
    url = os.environ.get("RAMPART_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("RAMPART_URL is not set: the live tests run from `cargo test --test it clients`")
        pytest.skip("RAMPART_URL is not set (run through `cargo test --test it clients`)")
    e = os.environ
    return Live(
        url=url,
        audience=e["RAMPART_AUDIENCE"],
        service_key=e["RAMPART_SERVICE_KEY"],
        writer_email=e["RAMPART_WRITER_EMAIL"],
        reader_email=e["RAMPART_READER_EMAIL"],
        admin_email=e["RAMPART_ADMIN_EMAIL"],
        password=e["RAMPART_PASSWORD"],
        key_read=e["RAMPART_KEY_READ"],
        key_write=e["RAMPART_KEY_WRITE"],
        token_other_audience=e["RAMPART_TOKEN_OTHER_AUDIENCE"],
        token_expired=e["RAMPART_TOKEN_EXPIRED"],
        token_mfa_fresh=e["RAMPART_TOKEN_MFA_FRESH"],
        token_mfa_old=e["RAMPART_TOKEN_MFA_OLD"],
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tampered(token: str) -> str:
    """The token with its payload changed (roles: admin) and its signature kept."""
    import base64
    import json

    h, p, s = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    claims["roles"] = ["admin"]
    p2 = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{h}.{p2}.{s}"


def examples_on_path() -> None:
    import sys
    from pathlib import Path

    examples = str(Path(__file__).resolve().parent.parent / "examples")
    if examples not in sys.path:
        sys.path.insert(0, examples)
