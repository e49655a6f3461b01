"""examples/starlette_app.py against the real Rampart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from .conftest import Live, bearer, examples_on_path, tampered


@pytest.fixture(scope="module")
def client(live: Live) -> Iterator[TestClient]:
    examples_on_path()
    import starlette_app

    with TestClient(starlette_app.app) as c:
        yield c


def test_the_starlette_app(live: Live, client: TestClient) -> None:
    writer = live.login(live.writer_email)["access_token"]
    reader = live.login(live.reader_email)["access_token"]
    assert client.get("/public").json() == {"user": None}
    assert client.get("/me").status_code == 401
    me = client.get("/me", headers=bearer(writer))
    assert me.status_code == 200
    assert me.json()["kind"] == "user"
    assert client.post("/orders", headers=bearer(writer)).status_code == 201
    res = client.post("/orders", headers=bearer(reader))
    assert res.status_code == 403
    assert res.json()["code"] == "forbidden"
    assert res.headers["content-type"] == "application/problem+json"
    for bad in (tampered(writer), live.token_other_audience, live.token_expired):
        res = client.get("/public", headers=bearer(bad))
        assert res.status_code == 401
        assert res.json()["code"] == "invalid_token"
    # An API key's scopes are its permissions.
    assert client.post("/orders", headers={"X-API-Key": live.key_read}).status_code == 403
    assert client.post("/orders", headers={"X-API-Key": live.key_write}).status_code == 201
