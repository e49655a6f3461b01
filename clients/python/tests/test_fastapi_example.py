"""examples/fastapi_app.py against the real Rampart: a user signs in through Rampart and calls
the protected routes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from .conftest import Live, bearer, examples_on_path, tampered


@pytest.fixture(scope="module")
def client(live: Live) -> Iterator[TestClient]:
    examples_on_path()
    import fastapi_app

    with TestClient(fastapi_app.app) as c:
        yield c


def problem(res: httpx.Response) -> dict[str, Any]:
    detail: dict[str, Any] = res.json()["detail"]
    return detail


def test_a_signed_in_user_with_the_permission_is_let_in(live: Live, client: TestClient) -> None:
    tokens = live.login(live.writer_email)
    me = client.get("/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["roles"] == ["orders-writer"]
    res = client.post("/orders", headers=bearer(tokens["access_token"]))
    assert res.status_code == 201, res.text
    assert res.json()["created_by"] == me.json()["id"]
    assert client.get("/public").json() == {"ok": True}


def test_no_token_is_401_with_www_authenticate(client: TestClient) -> None:
    for path, method in [("/me", "GET"), ("/orders", "POST"), ("/orders/live", "GET")]:
        res = client.request(method, path)
        assert res.status_code == 401, (path, res.text)
        assert res.headers["www-authenticate"].startswith("Bearer")
        assert problem(res)["code"] == "unauthenticated"


def test_without_the_permission_is_403(live: Live, client: TestClient) -> None:
    tokens = live.login(live.reader_email)
    assert client.get("/me", headers=bearer(tokens["access_token"])).status_code == 200
    res = client.post("/orders", headers=bearer(tokens["access_token"]))
    assert res.status_code == 403
    assert problem(res)["code"] == "forbidden"
    assert problem(res)["missing"] == ["orders:write"]


def test_a_revoked_session_is_refused_online_at_once(live: Live, client: TestClient) -> None:
    tokens = live.login(live.writer_email)
    h = bearer(tokens["access_token"])
    assert client.get("/orders/live", headers=h).status_code == 200
    assert httpx.post(f"{live.url}/v1/auth/logout", headers=h).status_code == 204
    time.sleep(0.6)  # RAMPART_INTROSPECTION_TTL = 0.5 s in the harness
    res = client.get("/orders/live", headers=h)
    assert res.status_code == 401
    assert problem(res)["reason"] == "token_inactive"
    # Offline routes accept the token until it expires: the documented trade.
    assert client.get("/me", headers=h).status_code == 200


def test_tampered_other_audience_and_expired_tokens_are_401(live: Live, client: TestClient) -> None:
    token = live.login(live.writer_email)["access_token"]
    for bad, reason in [
        (tampered(token), "token_signature"),
        (live.token_other_audience, "token_audience"),
        (live.token_expired, "token_expired"),
        ("garbage", "token_malformed"),
    ]:
        res = client.post("/orders", headers=bearer(bad))
        assert res.status_code == 401, (reason, res.text)
        assert problem(res)["reason"] == reason
        assert 'error="invalid_token"' in res.headers["www-authenticate"]


def test_api_key_scopes(live: Live, client: TestClient) -> None:
    assert client.get("/reports", headers={"X-API-Key": live.key_read}).status_code == 200
    assert client.get("/reports", headers=bearer(live.key_read)).status_code == 200
    res = client.post("/reports", headers={"X-API-Key": live.key_read})
    assert res.status_code == 403
    assert problem(res)["code"] == "insufficient_scope"
    assert client.post("/reports", headers={"X-API-Key": live.key_write}).status_code == 200
    bad = client.get("/reports", headers={"X-API-Key": "rk_" + "B" * 46})
    assert bad.status_code == 401
    assert client.get("/reports").status_code == 401
    # A user's token is not an API key, and an API key is not a user's session.
    token = live.login(live.writer_email)["access_token"]
    assert client.get("/reports", headers=bearer(token)).status_code == 401
    assert client.get("/me", headers={"X-API-Key": live.key_write}).status_code == 401


def test_mfa_age_is_required_where_asked(live: Live, client: TestClient) -> None:
    assert client.post("/settings/danger", headers=bearer(live.token_mfa_fresh)).status_code == 200
    for token in (live.token_mfa_old, live.login(live.writer_email)["access_token"]):
        res = client.post("/settings/danger", headers=bearer(token))
        assert res.status_code == 401
        assert problem(res)["code"] == "mfa_required"
        assert 'error="insufficient_user_authentication"' in res.headers["www-authenticate"]


def test_the_security_schemes_are_in_the_apps_openapi(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["RampartBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A Rampart access token (`Authorization: Bearer <jwt>`).",
    }
    assert schemes["RampartApiKey"]["in"] == "header"
    assert doc["paths"]["/orders"]["post"]["security"] == [{"RampartBearer": []}]
    assert {"RampartApiKey": []} in doc["paths"]["/reports"]["get"]["security"]
    assert "security" not in doc["paths"]["/public"]["get"]
