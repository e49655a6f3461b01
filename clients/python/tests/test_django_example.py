"""examples/django_app.py (middleware, decorator, DRF) against the real Rampart."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from .conftest import Live, bearer, examples_on_path, tampered


@pytest.fixture(scope="module")
def client(live: Live) -> Any:
    examples_on_path()
    from django.test import Client

    import django_app  # noqa: F401  (configures Django)

    return Client()


def auth(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def key(value: str) -> dict[str, str]:
    return {"HTTP_X_API_KEY": value}


def test_the_middleware_and_decorator(live: Live, client: Any) -> None:
    writer = live.login(live.writer_email)["access_token"]
    reader = live.login(live.reader_email)["access_token"]
    assert client.get("/public").json() == {"user": None}
    assert client.get("/me").status_code == 401
    me = client.get("/me", **auth(writer))
    assert me.status_code == 200
    assert client.post("/orders", **auth(writer)).status_code == 201
    res = client.post("/orders", **auth(reader))
    assert res.status_code == 403
    assert res.json()["code"] == "forbidden"
    for bad, reason in [
        (tampered(writer), "token_signature"),
        (live.token_other_audience, "token_audience"),
        (live.token_expired, "token_expired"),
    ]:
        res = client.get("/public", **auth(bad))
        assert res.status_code == 401
        assert res.json()["reason"] == reason
    assert client.get("/reports", **key(live.key_read)).status_code == 200
    assert client.get("/reports", **auth(writer)).status_code == 401


def test_online_views_see_revocation(live: Live, client: Any) -> None:
    tokens = live.login(live.writer_email)
    assert client.get("/orders/live", **auth(tokens["access_token"])).status_code == 200
    assert httpx.post(f"{live.url}/v1/auth/logout", headers=bearer(tokens["access_token"])).status_code == 204
    time.sleep(0.6)
    res = client.get("/orders/live", **auth(tokens["access_token"]))
    assert res.status_code == 401
    assert res.json()["reason"] == "token_inactive"


def test_drf_authentication_and_permission(live: Live, client: Any) -> None:
    writer = live.login(live.writer_email)["access_token"]
    reader = live.login(live.reader_email)["access_token"]
    assert client.post("/api/orders").status_code == 401
    assert client.post("/api/orders", **auth(writer)).status_code == 201
    assert client.post("/api/orders", **auth(reader)).status_code == 403
    assert client.get("/api/reports", **key(live.key_read)).status_code == 200
    assert client.get("/api/reports", **auth(writer)).status_code == 403
    assert client.post("/api/orders", **key(live.key_write)).status_code == 403
