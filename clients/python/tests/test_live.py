"""The verifiers and the JSON API client against the real Rampart the harness started."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import pytest

from rampart_client import (
    OPERATIONS,
    ApiKeyVerifier,
    AssertionVerifier,
    AsyncRampartClient,
    BadRequest,
    Conflict,
    Forbidden,
    InvalidApiKey,
    InvalidToken,
    RampartClient,
    TokenVerifier,
    Unauthorized,
)

from .conftest import Live, tampered
from .keys import unsigned

OPENAPI = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"


def code(fn: object) -> str:
    with pytest.raises(InvalidToken) as e:
        fn()  # type: ignore[operator]
    return e.value.code


def test_the_client_has_a_method_for_every_route_of_the_openapi_document() -> None:
    doc = json.loads(OPENAPI.read_text())
    routes = {
        (method.upper(), path)
        for path, ops in doc["paths"].items()
        for method in ops
        # The gateway's doors are for proxies; the transit API is Vault's (use hvac).
        if not path.startswith(("/authz/", "/v1/transit/"))
    }
    covered = set(OPERATIONS.values())
    assert routes - covered == set(), "routes without a client method"
    assert covered - routes == set(), "client methods for routes that do not exist"
    for name in OPERATIONS:
        assert callable(getattr(RampartClient, name)), name
        assert callable(getattr(AsyncRampartClient, name)), name


def test_real_tokens_verify_and_every_forgery_is_refused(live: Live) -> None:
    v = TokenVerifier(live.url, audience=live.audience)
    tokens = live.login(live.writer_email)
    claims = v.verify(tokens["access_token"])
    assert claims.sid == tokens["session_id"]
    assert claims.roles == ("orders-writer",)
    assert claims.amr == ("pwd",) and claims.auth_time is not None
    assert code(lambda: v.verify(live.token_other_audience)) == "token_audience"
    assert code(lambda: v.verify(live.token_expired)) == "token_expired"
    assert code(lambda: v.verify(tampered(tokens["access_token"]))) == "token_signature"
    # alg confusion: HS256 keyed with the published public key, and alg none, naming a real kid.
    jwk = httpx.get(f"{live.url}/.well-known/jwks.json").json()["keys"][0]
    payload = {"iss": "rampart", "aud": live.audience, "sub": "x", "iat": 1, "nbf": 1, "exp": 2**40}
    hs = unsigned({"alg": "HS256", "typ": "at+jwt", "kid": jwk["kid"]}, payload, key=jwk["x"].encode())
    assert code(lambda: v.verify(hs)) == "token_algorithm"
    none = unsigned({"alg": "none", "typ": "at+jwt", "kid": jwk["kid"]}, payload)
    assert code(lambda: v.verify(none)) == "token_algorithm"
    # A verifier for another audience refuses Rampart's real token.
    other = TokenVerifier(live.url, audience="another-api")
    assert code(lambda: other.verify(tokens["access_token"])) == "token_audience"


def test_unknown_kids_cause_at_most_one_refetch(live: Live) -> None:
    v = TokenVerifier(live.url, audience=live.audience)
    v.verify(live.login(live.writer_email)["access_token"])
    assert v.jwks.fetches == 1
    for _ in range(200):
        forged = unsigned(
            {"alg": "EdDSA", "typ": "at+jwt", "kid": secrets.token_hex(8)}, {"sub": "x"}, key=b"k"
        )
        assert code(lambda: v.verify(forged)) == "token_unknown_key"  # noqa: B023
    # The set was fetched moments ago, so the first unknown kid may not even cause a refetch
    # (min_refetch_interval, 30 s); at most one either way, never one per token.
    assert v.jwks.fetches <= 2, "at most one refetch for 200 unknown kids"


def test_online_mode_sees_a_revoked_session(live: Live) -> None:
    tokens = live.login(live.writer_email)
    token = tokens["access_token"]
    online = TokenVerifier(
        live.url, audience=live.audience, online=True, service_key=live.service_key, introspection_ttl=0
    )
    offline = TokenVerifier(live.url, audience=live.audience)
    assert online.verify(token).sid == tokens["session_id"]
    RampartClient(live.url, token=token).logout()
    assert code(lambda: online.verify(token)) == "token_inactive"
    assert offline.verify(token).sid == tokens["session_id"], "offline: valid until it expires"
    no_key = TokenVerifier(live.url, audience=live.audience, online=True)
    with pytest.raises(Exception, match="service_key"):
        no_key.verify(live.login(live.writer_email)["access_token"])


def test_api_keys_are_checked_with_rampart_scope_by_scope(live: Live) -> None:
    keys = ApiKeyVerifier(live.url, service_key=live.service_key)
    info = keys.verify(live.key_read, ["orders:read"])
    assert info.scopes == ("orders:read",)
    with pytest.raises(Forbidden) as f:
        keys.verify(live.key_read, ["orders:write"])
    assert f.value.code == "insufficient_scope"
    assert keys.verify(live.key_write, ["orders:read", "orders:write"]).key_id != info.key_id
    fake = "rk_" + "A" * 46
    with pytest.raises(InvalidApiKey) as e:
        keys.verify(fake)
    assert e.value.code in ("unknown", "malformed")
    # A service key without keys:verify is refused by Rampart itself: the verifier fails closed.
    bad = ApiKeyVerifier(live.url, service_key=live.key_read)
    with pytest.raises(Exception, match="keys/verify"):
        bad.verify(live.key_write)


def test_the_gateway_assertion_and_access_tokens_are_not_interchangeable(live: Live) -> None:
    tokens = live.login(live.writer_email)
    res = httpx.get(
        f"{live.url}/authz/forward-auth",
        headers={
            "x-forwarded-method": "GET",
            "x-forwarded-proto": "http",
            "x-forwarded-host": "app.test",
            "x-forwarded-uri": "/orders",
            "authorization": f"Bearer {tokens['access_token']}",
        },
    )
    assert res.status_code == 200, res.text
    assertion = res.headers["x-rampart-jwt-assertion"]
    av = AssertionVerifier(live.url, audience="app.test")
    claims = av.verify(assertion)
    assert claims.sid == tokens["session_id"] and "orders:write" in claims.permissions
    assert not claims.anonymous
    assert code(lambda: av.verify(tokens["access_token"])) == "token_type"
    assert code(lambda: TokenVerifier(live.url, audience=live.audience).verify(assertion)) == "token_type"
    assert (
        code(lambda: AssertionVerifier(live.url, audience="other.test").verify(assertion)) == "token_audience"
    )
    assert code(lambda: av.verify(tampered(assertion))) == "token_signature"
    assert code(lambda: av.verify(None)) == "token_missing"


def test_the_json_api_client_raises_problems_as_typed_errors(live: Live) -> None:
    anon = RampartClient(live.url)
    assert anon.healthz() == {"status": "ok"}
    assert "keys" in anon.jwks()
    with pytest.raises(Unauthorized) as u:
        anon.login(live.writer_email, "not the password at all")
    assert u.value.code == "invalid_credentials" and u.value.status == 401
    with pytest.raises(Conflict) as c:
        anon.register(live.writer_email, "another long passphrase here")
    assert c.value.code == "email_taken"
    with pytest.raises(BadRequest) as b:
        anon.register("not-an-email", "x")
    assert b.value.code == "validation_failed" and b.value.errors
    admin = anon.with_token(anon.login(live.admin_email, live.password)["access_token"])
    assert any(r["name"] == "orders-writer" for r in admin.list_roles()["items"])
    users = admin.list_users(q="writer@")["items"]
    assert [u["email"] for u in users] == [live.writer_email]
    service = RampartClient(live.url, api_key=live.service_key)
    assert service.verify_api_key(live.key_read, scope="orders:read")["valid"] is True
    assert service.authz_check("orders:write", subject_id=users[0]["id"]) is True
    assert service.introspect(live.token_expired)["active"] is False


@pytest.mark.anyio
async def test_the_async_client_works_the_same(live: Live) -> None:
    client = AsyncRampartClient(live.url)
    tokens = await client.login(live.reader_email, live.password)
    me = await client.with_token(tokens["access_token"]).me()
    assert me["user"]["email"] == live.reader_email
    with pytest.raises(Unauthorized):
        await client.with_token("garbage").me()
    await client.aclose()
