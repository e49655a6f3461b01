// The verifiers against keys made here and a fake JWKS (an injected fetch): every security
// property, without a server.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { ApiKeyVerifier, Forbidden, InvalidApiKey, InvalidToken, TokenVerifier, allows, check, principalOfToken, StepUpRequired } from "@rampart/client";
import { b64, tampered, unsigned } from "./helpers.mjs";

async function signer(kid, alg = "EdDSA") {
  const { privateKey, publicKey } = await generateKeyPair(alg, { crv: alg === "EdDSA" ? "Ed25519" : undefined, extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  const sign = (over = {}, typ = "at+jwt", useKid = kid) => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: "rampart", aud: "rampart", sub: "u-1", sid: "s-1", jti: crypto.randomUUID(), iat: now, nbf: now, exp: now + 600, roles: ["user"], amr: ["pwd"], auth_time: now, ...over };
    for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
    return new SignJWT(claims).setProtectedHeader({ alg, typ, kid: useKid }).sign(privateKey);
  };
  return { jwk, sign };
}

function fake(...signers) {
  const state = { signers, fetches: 0, fail: false };
  state.fetch = async (url) => {
    if (state.fail) return new Response("", { status: 503 });
    if (String(url).endsWith("/.well-known/jwks.json")) {
      state.fetches += 1;
      return Response.json({ keys: state.signers.map((s) => s.jwk) });
    }
    return new Response("", { status: 404 });
  };
  return state;
}

async function code(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof InvalidToken, String(e));
    return e.code;
  }
  assert.fail("accepted");
}

for (const alg of ["EdDSA", "ES256"]) {
  test(`a good ${alg} token verifies with typed claims`, async () => {
    const s = await signer("k1", alg);
    const f = fake(s);
    const v = new TokenVerifier("http://rampart.test", { audience: "rampart", fetch: f.fetch });
    const c = await v.verify(await s.sign({ roles: ["user", "clerk"], amr: ["pwd", "otp", "mfa"] }));
    assert.deepEqual([c.sub, c.sid, c.roles, c.amr], ["u-1", "s-1", ["user", "clerk"], ["pwd", "otp", "mfa"]]);
    assert.equal(typeof c.authTime, "number");
  });
}

test("the algorithm is pinned: none, HS256 with the public key, and ES256 over an EdDSA key are refused", async () => {
  const s = await signer("k1");
  const v = new TokenVerifier("http://rampart.test", { audience: "rampart", fetch: fake(s).fetch });
  const claims = JSON.parse(Buffer.from((await s.sign()).split(".")[1], "base64url"));
  assert.equal(await code(v.verify(unsigned({ alg: "none", typ: "at+jwt", kid: "k1" }, claims))), "token_algorithm");
  assert.equal(await code(v.verify(unsigned({ alg: "HS256", typ: "at+jwt", kid: "k1" }, claims, s.jwk.x))), "token_algorithm");
  const es = await signer("k1", "ES256");
  assert.equal(await code(v.verify(await es.sign())), "token_algorithm");
});

test("wrong audience, issuer, typ, expired, future and tampered tokens are refused", async () => {
  const s = await signer("k1");
  const v = new TokenVerifier("http://rampart.test", { audience: "rampart", fetch: fake(s).fetch });
  const now = Math.floor(Date.now() / 1000);
  assert.equal(await code(v.verify(await s.sign({ aud: "another-api" }))), "token_audience");
  assert.equal(await code(v.verify(await s.sign({ iss: "https://evil.example" }))), "token_issuer");
  assert.equal(await code(v.verify(await s.sign({}, "rampart-assertion+jwt"))), "token_type");
  assert.equal(await code(v.verify(await s.sign({}, "JWT"))), "token_type");
  assert.equal(await code(v.verify(await s.sign({ exp: now - 120 }))), "token_expired");
  assert.equal(await code(v.verify(await s.sign({ nbf: now + 600, iat: now + 600 }))), "token_not_yet_valid");
  assert.equal(await code(v.verify(await s.sign({ exp: undefined }))), "token_malformed");
  assert.equal(await code(v.verify(tampered(await s.sign()))), "token_signature");
  const impostor = await signer("k1");
  assert.equal(await code(v.verify(await impostor.sign())), "token_signature");
  assert.equal(await code(v.verify("garbage")), "token_malformed");
});

test("an unknown kid triggers one bounded refetch, not a storm", async () => {
  const s1 = await signer("k1");
  const f = fake(s1);
  let now = 1_000_000;
  const v = new TokenVerifier("http://rampart.test", { audience: "rampart", fetch: f.fetch, clock: () => now, jwks: { maxAgeMs: 300_000, minRefetchIntervalMs: 30_000 } });
  await v.verify(await s1.sign());
  assert.equal(f.fetches, 1);
  const s2 = await signer("k2");
  f.signers.push(s2);
  now += 31_000;
  await v.verify(await s2.sign());
  assert.equal(f.fetches, 2, "rotation: the new kid is fetched once");
  const forged = await Promise.all(Array.from({ length: 300 }, (_, i) => s1.sign({}, "at+jwt", `made-up-${i}`)));
  for (const t of forged) assert.equal(await code(v.verify(t)), "token_unknown_key");
  assert.equal(f.fetches, 2, "300 unknown kids within the interval: no fetch");
  now += 31_000;
  await Promise.all(forged.slice(0, 50).map((t) => code(v.verify(t))));
  assert.equal(f.fetches, 3, "after the interval: one fetch shared by 50 concurrent requests");
});

test("concurrent first requests share one JWKS fetch; held keys survive a failed refresh", async () => {
  const s = await signer("k1");
  const f = fake(s);
  let now = 1_000_000;
  const v = new TokenVerifier("http://rampart.test", { audience: "rampart", fetch: f.fetch, clock: () => now });
  const tokens = await Promise.all(Array.from({ length: 50 }, () => s.sign()));
  await Promise.all(tokens.map((t) => v.verify(t)));
  assert.equal(f.fetches, 1);
  f.fail = true;
  now += 301_000;
  assert.equal((await v.verify(await s.sign({ sub: "u-2" }))).sub, "u-2");
});

test("API keys: malformed never sent, answers cached briefly, insufficient scope is 403", async () => {
  let calls = 0;
  let answer = { valid: true, key_id: "k", owner_id: "o", scopes: ["orders:read"], expires_at: null, ratelimit: null };
  const fetchImpl = async () => {
    calls += 1;
    return Response.json(answer);
  };
  let now = 0;
  const keys = new ApiKeyVerifier("http://rampart.test", { serviceKey: "rk_service", fetch: fetchImpl, clock: () => now });
  await assert.rejects(keys.verify("rk_short"), (e) => e instanceof InvalidApiKey && e.code === "malformed");
  assert.equal(calls, 0);
  const key = "rk_" + "a".repeat(46);
  assert.deepEqual((await keys.verify(key, ["orders:read"])).scopes, ["orders:read"]);
  await keys.verify(key, ["orders:read"]);
  assert.equal(calls, 1);
  now += 6000;
  answer = { valid: false, code: "revoked" };
  await assert.rejects(keys.verify(key, ["orders:read"]), (e) => e instanceof InvalidApiKey && e.code === "revoked");
  answer = { valid: false, code: "insufficient_scope" };
  await assert.rejects(keys.verify(key, ["orders:write"]), (e) => e instanceof Forbidden && e.code === "insufficient_scope");
});

test("permissions follow Rampart's wildcards; MFA age is checked", async () => {
  assert.ok(allows(["orders:*"], "orders:write"));
  assert.ok(allows(["*"], "x:y"));
  assert.ok(!allows(["orders:read"], "orders:write"));
  const now = Math.floor(Date.now() / 1000);
  const base = { sub: "u", sid: "s", iss: "rampart", aud: "rampart", jti: "j", iat: now, nbf: now, exp: now + 60, roles: [], raw: {} };
  const fresh = principalOfToken({ ...base, amr: ["pwd", "otp", "mfa"], authTime: now - 10 });
  const old = principalOfToken({ ...base, amr: ["pwd", "otp", "mfa"], authTime: now - 3600 });
  const pwd = principalOfToken({ ...base, amr: ["pwd"], authTime: now });
  assert.equal(check(fresh, { mfaMaxAge: 300 }).id, "u");
  assert.throws(() => check(old, { mfaMaxAge: 300 }), StepUpRequired);
  assert.throws(() => check(pwd, { mfa: true }), StepUpRequired);
  assert.throws(() => check(pwd, { permissions: ["orders:write"] }), (e) => e instanceof Forbidden && e.missing[0] === "orders:write");
  assert.equal(b64("x"), "eA");
});
