// The verifiers against the real Rampart: real tokens, forgeries naming a real kid, the
// refetch cap, online revocation, and the assertion against access tokens.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { ApiKeyVerifier, AssertionVerifier, Forbidden, InvalidToken, TokenVerifier } from "@rampart/client";
import { bearer, env, login, skipLive, tampered, unsigned } from "./helpers.mjs";

async function code(p) {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof InvalidToken, String(e));
    return e.code;
  }
  assert.fail("accepted");
}

describe("verifiers against Rampart", { skip: skipLive }, () => {
  const url = env.RAMPART_URL;
  const audience = env.RAMPART_AUDIENCE;

  test("real tokens verify; forgeries naming a real kid are refused", async () => {
    const v = new TokenVerifier(url, { audience });
    const t = await login(env.RAMPART_WRITER_EMAIL);
    const c = await v.verify(t.access_token);
    assert.equal(c.sid, t.session_id);
    assert.deepEqual(c.roles, ["orders-writer"]);
    assert.equal(typeof c.authTime, "number");
    assert.equal(await code(v.verify(env.RAMPART_TOKEN_OTHER_AUDIENCE)), "token_audience");
    assert.equal(await code(v.verify(env.RAMPART_TOKEN_EXPIRED)), "token_expired");
    assert.equal(await code(v.verify(tampered(t.access_token))), "token_signature");
    const jwk = (await (await fetch(`${url}/.well-known/jwks.json`)).json()).keys[0];
    const payload = { iss: "rampart", aud: audience, sub: "x", iat: 1, nbf: 1, exp: 2 ** 40 };
    assert.equal(await code(v.verify(unsigned({ alg: "HS256", typ: "at+jwt", kid: jwk.kid }, payload, jwk.x))), "token_algorithm");
    assert.equal(await code(v.verify(unsigned({ alg: "none", typ: "at+jwt", kid: jwk.kid }, payload))), "token_algorithm");
    assert.equal(await code(new TokenVerifier(url, { audience: "another-api" }).verify(t.access_token)), "token_audience");
  });

  test("200 unknown kids cause at most one refetch", async () => {
    const v = new TokenVerifier(url, { audience });
    await v.verify((await login(env.RAMPART_WRITER_EMAIL)).access_token);
    for (let i = 0; i < 200; i++) {
      const forged = unsigned({ alg: "EdDSA", typ: "at+jwt", kid: randomBytes(8).toString("hex") }, { sub: "x" }, "k");
      assert.equal(await code(v.verify(forged)), "token_unknown_key");
    }
    assert.ok(v.jwks.fetches <= 2, `fetches: ${v.jwks.fetches}`);
  });

  test("online mode sees a revoked session at once", async () => {
    const t = await login(env.RAMPART_WRITER_EMAIL);
    const online = new TokenVerifier(url, { audience, online: true, serviceKey: env.RAMPART_SERVICE_KEY, introspectionTtlMs: 0 });
    assert.equal((await online.verify(t.access_token)).sid, t.session_id);
    await fetch(`${url}/v1/auth/logout`, { method: "POST", headers: bearer(t.access_token) });
    assert.equal(await code(online.verify(t.access_token)), "token_inactive");
    assert.equal((await new TokenVerifier(url, { audience }).verify(t.access_token)).sid, t.session_id);
  });

  test("API keys scope by scope", async () => {
    const keys = new ApiKeyVerifier(url, { serviceKey: env.RAMPART_SERVICE_KEY });
    assert.deepEqual((await keys.verify(env.RAMPART_KEY_READ, ["orders:read"])).scopes, ["orders:read"]);
    await assert.rejects(keys.verify(env.RAMPART_KEY_READ, ["orders:write"]), (e) => e instanceof Forbidden && e.code === "insufficient_scope");
    await assert.rejects(new ApiKeyVerifier(url, { serviceKey: env.RAMPART_KEY_READ }).verify(env.RAMPART_KEY_WRITE), /keys\/verify/);
  });

  test("the gateway assertion and access tokens are not interchangeable", async () => {
    const t = await login(env.RAMPART_WRITER_EMAIL);
    const res = await fetch(`${url}/authz/forward-auth`, {
      headers: { "x-forwarded-method": "GET", "x-forwarded-proto": "http", "x-forwarded-host": "app.test", "x-forwarded-uri": "/orders", ...bearer(t.access_token) },
    });
    assert.equal(res.status, 200);
    const assertion = res.headers.get("x-rampart-jwt-assertion");
    const av = new AssertionVerifier(url, { audience: "app.test" });
    const claims = await av.verify(assertion);
    assert.equal(claims.sid, t.session_id);
    assert.ok(claims.permissions.includes("orders:write"));
    assert.equal(await code(av.verify(t.access_token)), "token_type");
    assert.equal(await code(new TokenVerifier(url, { audience }).verify(assertion)), "token_type");
    assert.equal(await code(new AssertionVerifier(url, { audience: "other.test" }).verify(assertion)), "token_audience");
    assert.equal(await code(av.verify(tampered(assertion))), "token_signature");
    assert.equal(await code(av.verify(undefined)), "token_missing");
  });
});
