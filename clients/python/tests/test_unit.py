"""The verifiers against keys made here and a fake Rampart (httpx.MockTransport): every
security property, without a server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from rampart_client import (
    AsyncTokenVerifier,
    InvalidApiKey,
    InvalidToken,
    JwksPolicy,
    Principal,
    TokenVerifier,
    Unavailable,
    allows,
)
from rampart_client.auth import Requirement, check, read_credential
from rampart_client.errors import (
    Conflict,
    Forbidden,
    StepUpRequired,
    TooManyRequests,
    Unauthorized,
    problem_error,
)
from rampart_client.keys import ApiKeyVerifier

from .keys import Signer, b64, unsigned


class FakeRampart:
    """Serves a JWKS made of ``signers`` and counts the fetches."""

    def __init__(self, *signers: Signer) -> None:
        self.signers = list(signers)
        self.jwks_fetches = 0
        self.calls: list[str] = []
        self.verify_answer: dict[str, Any] = {"valid": False, "code": "unknown"}
        self.fail = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.url.path)
        if self.fail:
            return httpx.Response(503)
        if request.url.path == "/.well-known/jwks.json":
            self.jwks_fetches += 1
            return httpx.Response(200, json={"keys": [s.jwk() for s in self.signers]})
        if request.url.path == "/v1/keys/verify":
            return httpx.Response(200, json=self.verify_answer)
        return httpx.Response(404)

    def verifier(self, clock: Callable[[], float] = time.monotonic, **kw: Any) -> TokenVerifier:
        return TokenVerifier(
            "http://rampart.test",
            audience="rampart",
            transport=httpx.MockTransport(self.handler),
            clock=clock,
            **kw,
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def code(fn: Callable[[], object]) -> str:
    with pytest.raises(InvalidToken) as e:
        fn()
    return e.value.code


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_a_good_token_verifies_with_typed_claims(alg: str) -> None:
    s = Signer("k1", alg)
    v = FakeRampart(s).verifier()
    c = v.verify(s.sign(roles=["user", "clerk"], amr=["pwd", "otp", "mfa"]))
    assert (c.sub, c.sid, c.roles, c.amr) == ("u-1", "s-1", ("user", "clerk"), ("pwd", "otp", "mfa"))
    assert c.auth_time is not None and c.exp > c.iat


def test_the_algorithm_is_pinned_none_and_hmac_are_refused() -> None:
    s = Signer("k1")
    v = FakeRampart(s).verifier()
    claims = json.loads(jwt_payload(s.sign()))
    # alg: none, and HS256 keyed with the public key's bytes (the classic confusion attack).
    none = unsigned({"alg": "none", "typ": "at+jwt", "kid": "k1"}, claims)
    hs = unsigned({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}, claims, key=s.jwk()["x"].encode())
    assert code(lambda: v.verify(none)) == "token_algorithm"
    assert code(lambda: v.verify(hs)) == "token_algorithm"
    # ES256 in the header over an EdDSA key: the key's own algorithm only.
    es = Signer("k1", "ES256").sign()
    assert code(lambda: v.verify(es)) == "token_algorithm"


def jwt_payload(token: str) -> str:
    import base64

    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


def test_wrong_audience_issuer_type_expired_and_future_are_refused() -> None:
    s = Signer("k1")
    v = FakeRampart(s).verifier()
    now = int(time.time())
    assert code(lambda: v.verify(s.sign(aud="another-api"))) == "token_audience"
    assert code(lambda: v.verify(s.sign(iss="https://evil.example"))) == "token_issuer"
    assert code(lambda: v.verify(s.sign(typ="rampart-assertion+jwt"))) == "token_type"
    assert code(lambda: v.verify(s.sign(typ="JWT"))) == "token_type"
    assert code(lambda: v.verify(s.sign(exp=now - 120))) == "token_expired"
    assert code(lambda: v.verify(s.sign(nbf=now + 600, iat=now + 600))) == "token_not_yet_valid"
    assert code(lambda: v.verify(s.sign(exp=None))) == "token_malformed"
    # Within the leeway (30 s) an expiry is forgiven.
    assert v.verify(s.sign(exp=now - 5)).sub == "u-1"


def test_a_tampered_token_or_a_foreign_signature_is_refused() -> None:
    s = Signer("k1")
    v = FakeRampart(s).verifier()
    h, _, sig = s.sign().split(".")
    claims = json.loads(jwt_payload(s.sign()))
    claims["roles"] = ["admin"]
    forged = f"{h}.{b64(json.dumps(claims).encode())}.{sig}"
    assert code(lambda: v.verify(forged)) == "token_signature"
    assert code(lambda: v.verify(Signer("k1").sign())) == "token_signature"
    assert code(lambda: v.verify("not.a.jwt")) == "token_malformed"
    assert code(lambda: v.verify("")) == "token_malformed"


def test_an_unknown_kid_triggers_one_bounded_refetch_not_a_storm() -> None:
    s1 = Signer("k1")
    fake = FakeRampart(s1)
    clock = Clock()
    v = fake.verifier(clock=clock, jwks=JwksPolicy(max_age=300, min_refetch_interval=30))
    v.verify(s1.sign())
    assert fake.jwks_fetches == 1
    # A rotation: the new kid is fetched once and then served from the cache.
    s2 = Signer("k2")
    fake.signers.append(s2)
    clock.now += 31
    assert v.verify(s2.sign()).sub == "u-1"
    assert fake.jwks_fetches == 2
    for _ in range(20):
        v.verify(s2.sign())
    assert fake.jwks_fetches == 2
    # 500 tokens naming made-up kids within the interval: refused without a single fetch.
    for i in range(500):
        forged = s1.sign(kid=f"made-up-{i}")
        assert code(lambda: v.verify(forged)) == "token_unknown_key"  # noqa: B023
    assert fake.jwks_fetches == 2
    # After the interval, one more fetch, then quiet again.
    clock.now += 31
    for i in range(100):
        forged = s1.sign(kid=f"other-{i}")
        code(lambda: v.verify(forged))  # noqa: B023
    assert fake.jwks_fetches == 3
    # The whole set is refreshed when older than max_age.
    clock.now += 301
    v.verify(s1.sign())
    assert fake.jwks_fetches == 4


def test_keys_already_held_survive_a_failed_refresh_and_no_keys_is_unavailable() -> None:
    s = Signer("k1")
    fake = FakeRampart(s)
    clock = Clock()
    v = fake.verifier(clock=clock)
    v.verify(s.sign())
    fake.fail = True
    clock.now += 301
    assert v.verify(s.sign()).sub == "u-1"
    fresh = fake.verifier(clock=clock)
    with pytest.raises(Unavailable):
        fresh.verify(s.sign())


def test_only_eddsa_and_es256_signing_keys_are_taken_from_the_jwks() -> None:
    from rampart_client._jose import parse_jwks

    good = Signer("k1").jwk()
    bad = [
        {**good, "kid": "a", "alg": "HS256"},
        {**good, "kid": "b", "kty": "EC"},
        {**good, "kid": "c", "use": "enc"},
        {**good, "kid": ""},
        {"kty": "oct", "k": "c2VjcmV0", "kid": "d", "alg": "HS256"},
    ]
    assert list(parse_jwks({"keys": [good, *bad]})) == ["k1"]


@pytest.mark.anyio
async def test_the_async_verifier_shares_one_fetch_between_concurrent_requests() -> None:
    import asyncio

    s = Signer("k1")
    fake = FakeRampart(s)

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)
        return fake.handler(request)

    v = AsyncTokenVerifier("http://rampart.test", audience="rampart", transport=httpx.MockTransport(handler))
    results = await asyncio.gather(*(v.verify(s.sign()) for _ in range(50)))
    assert len(results) == 50
    assert fake.jwks_fetches == 1
    with pytest.raises(InvalidToken) as e:
        await v.verify(s.sign(aud="other"))
    assert e.value.code == "token_audience"


def test_api_keys_are_cached_briefly_and_malformed_ones_never_sent() -> None:
    fake = FakeRampart()
    clock = Clock()
    keys = ApiKeyVerifier(
        "http://rampart.test",
        service_key="rk_service",
        transport=httpx.MockTransport(fake.handler),
        clock=clock,
    )
    with pytest.raises(InvalidApiKey) as e:
        keys.verify("rk_tooshort")
    assert e.value.code == "malformed" and fake.calls == []
    key = "rk_" + "a" * 46
    fake.verify_answer = {
        "valid": True,
        "key_id": "k",
        "owner_id": "o",
        "scopes": ["orders:read"],
        "expires_at": None,
        "ratelimit": None,
    }
    assert keys.verify(key, ["orders:read"]).scopes == ("orders:read",)
    assert keys.verify(key, ["orders:read"]).key_id == "k"
    assert fake.calls == ["/v1/keys/verify"]
    clock.now += 6
    fake.verify_answer = {"valid": False, "code": "revoked"}
    with pytest.raises(InvalidApiKey) as e:
        keys.verify(key, ["orders:read"])
    assert e.value.code == "revoked"
    fake.verify_answer = {"valid": False, "code": "insufficient_scope"}
    with pytest.raises(Forbidden) as f:
        keys.verify(key, ["orders:write"])
    assert f.value.code == "insufficient_scope"


def test_permissions_follow_rampart_wildcards() -> None:
    assert allows(["orders:*"], "orders:write")
    assert allows(["*"], "anything:at_all")
    assert not allows(["orders:read"], "orders:write")
    assert not allows(["orders.archive:*"], "orders:write")


def test_requirements_check_permissions_and_mfa_age() -> None:
    s = Signer("k1")
    v = FakeRampart(s).verifier()
    now = int(time.time())
    fresh = v.verify(s.sign(amr=["pwd", "otp", "mfa"], auth_time=now - 10))
    old = v.verify(s.sign(amr=["pwd", "otp", "mfa"], auth_time=now - 3600))
    pwd = v.verify(s.sign())
    mfa = Requirement.of(mfa_max_age=300)
    assert check(Principal.of_token(fresh), mfa).id == "u-1"
    for claims in (old, pwd):
        with pytest.raises(StepUpRequired):
            check(Principal.of_token(claims), mfa)
    with pytest.raises(Forbidden) as e:
        check(Principal.of_token(pwd, ["orders:read"]), Requirement.of(permissions=["orders:write"]))
    assert e.value.missing == ("orders:write",)


def test_credentials_are_read_as_rampart_reads_them() -> None:
    assert read_credential("Bearer eyJ.a.b", None) == read_credential("bearer  eyJ.a.b", None)
    assert read_credential("Bearer rk_x", None).kind == "api_key"  # type: ignore[union-attr]
    assert read_credential(None, "rk_y").kind == "api_key"  # type: ignore[union-attr]
    assert read_credential("Basic abc", None) is None


def test_problem_documents_become_typed_errors_with_their_code() -> None:
    e = problem_error(409, {"code": "email_taken", "detail": "taken", "status": 409}, "rid")
    assert isinstance(e, Conflict) and e.code == "email_taken" and e.request_id == "rid"
    r = problem_error(429, {"code": "rate_limited"}, retry_after="7")
    assert isinstance(r, TooManyRequests) and r.retry_after == 7
    assert isinstance(problem_error(401, None), Unauthorized)


def test_a_repeated_token_is_answered_from_the_seen_cache_but_never_past_its_exp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rampart_client import Rampart
    from rampart_client.tokens import VERIFIED_TTL

    s = Signer("k1")
    fake = FakeRampart(s)
    r = Rampart(
        "http://rampart.test", audience="rampart", leeway=0, transport=httpx.MockTransport(fake.handler)
    )
    now = time.time()
    token = s.sign(exp=int(now) + 60)
    headers = {"authorization": f"Bearer {token}"}
    first = r.authorize(headers, Requirement.of())
    assert r.authorize(headers, Requirement.of()) is first, "the repeat is the principal already made"
    # A step-up requirement still checks the (cached) principal: no factor in amr.
    with pytest.raises(StepUpRequired):
        r.authorize(headers, Requirement.of(mfa=True))
    # Another header (one character changed) is never the cached principal.
    tampered = {"authorization": f"Bearer {token[:-2]}{'A' if token[-2] != 'A' else 'B'}{token[-1]}"}
    with pytest.raises(InvalidToken):
        r.authorize(tampered, Requirement.of())
    # Past exp: refused, the cache notwithstanding.
    # (`time` is one module: this moves the clock for the client and the verifier alike.)
    monkeypatch.setattr(time, "time", lambda: now + 61)
    with pytest.raises(InvalidToken) as e:
        r.authorize(headers, Requirement.of())
    assert e.value.code == "token_expired"
    # Past the verifier's own cache lifetime the principal is made again (a key withdrawn from
    # the JWKS is noticed as the verifier notices it).
    monkeypatch.undo()
    later = time.time()
    fresh = s.sign(exp=int(later) + 3600)
    h2 = {"authorization": f"Bearer {fresh}"}
    p = r.authorize(h2, Requirement.of())
    assert r.authorize(h2, Requirement.of()) is p
    monkeypatch.setattr(time, "time", lambda: later + VERIFIED_TTL + 1)
    assert r.authorize(h2, Requirement.of()) is not p
