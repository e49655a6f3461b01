// examples/express-app.mjs and examples/fastify-app.mjs against the real Rampart the harness
// started: a user signs in through Rampart and calls the protected routes of each app.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { buildApp as buildExpress } from "../examples/express-app.mjs";
import { buildApp as buildFastify } from "../examples/fastify-app.mjs";
import { bearer, env, login, skipLive, tampered } from "./helpers.mjs";

const frameworks = {
  express: async () => {
    const server = buildExpress().listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
  },
  fastify: async () => {
    const app = await buildFastify();
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    return { url, close: () => app.close() };
  },
};

for (const [name, start] of Object.entries(frameworks)) {
  describe(`${name} example`, { skip: skipLive }, () => {
    let app;
    before(async () => {
      app = await start();
    });
    after(async () => app?.close());
    const call = async (method, path, headers = {}) => {
      const res = await fetch(app.url + path, { method, headers });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
    };

    test("a user with the permission is let in", async () => {
      const t = await login(env.RAMPART_WRITER_EMAIL);
      const me = await call("GET", "/me", bearer(t.access_token));
      assert.equal(me.status, 200);
      assert.deepEqual(me.body.roles, ["orders-writer"]);
      const created = await call("POST", "/orders", bearer(t.access_token));
      assert.equal(created.status, 201);
      assert.equal(created.body.created_by, me.body.id);
      assert.equal((await call("GET", "/public")).status, 200);
    });

    test("no token is 401 with WWW-Authenticate", async () => {
      for (const [m, p] of [["GET", "/me"], ["POST", "/orders"], ["GET", "/orders/live"]]) {
        const r = await call(m, p);
        assert.equal(r.status, 401, p);
        assert.match(r.headers.get("www-authenticate"), /^Bearer/);
        assert.equal(r.headers.get("content-type").split(";")[0], "application/problem+json");
        assert.equal(r.body.code, "unauthenticated");
      }
    });

    test("without the permission is 403", async () => {
      const t = await login(env.RAMPART_READER_EMAIL);
      assert.equal((await call("GET", "/me", bearer(t.access_token))).status, 200);
      const r = await call("POST", "/orders", bearer(t.access_token));
      assert.equal(r.status, 403);
      assert.equal(r.body.code, "forbidden");
      assert.deepEqual(r.body.missing, ["orders:write"]);
    });

    test("a revoked session is refused online", async () => {
      const t = await login(env.RAMPART_WRITER_EMAIL);
      assert.equal((await call("GET", "/orders/live", bearer(t.access_token))).status, 200);
      const out = await fetch(`${env.RAMPART_URL}/v1/auth/logout`, { method: "POST", headers: bearer(t.access_token) });
      assert.equal(out.status, 204);
      await sleep(600); // RAMPART_INTROSPECTION_TTL = 0.5 s in the harness
      const r = await call("GET", "/orders/live", bearer(t.access_token));
      assert.equal(r.status, 401);
      assert.equal(r.body.reason, "token_inactive");
      assert.equal((await call("GET", "/me", bearer(t.access_token))).status, 200, "offline: valid until it expires");
    });

    test("tampered, other-audience, expired and garbage tokens are 401", async () => {
      const t = await login(env.RAMPART_WRITER_EMAIL);
      for (const [token, reason] of [
        [tampered(t.access_token), "token_signature"],
        [env.RAMPART_TOKEN_OTHER_AUDIENCE, "token_audience"],
        [env.RAMPART_TOKEN_EXPIRED, "token_expired"],
        ["garbage", "token_malformed"],
      ]) {
        const r = await call("POST", "/orders", bearer(token));
        assert.equal(r.status, 401, reason);
        assert.equal(r.body.reason, reason);
        assert.match(r.headers.get("www-authenticate"), /error="invalid_token"/);
      }
    });

    test("API key scopes", async () => {
      assert.equal((await call("GET", "/reports", { "x-api-key": env.RAMPART_KEY_READ })).status, 200);
      assert.equal((await call("GET", "/reports", bearer(env.RAMPART_KEY_READ))).status, 200);
      const r = await call("POST", "/reports", { "x-api-key": env.RAMPART_KEY_READ });
      assert.equal(r.status, 403);
      assert.equal(r.body.code, "insufficient_scope");
      assert.equal((await call("POST", "/reports", { "x-api-key": env.RAMPART_KEY_WRITE })).status, 200);
      assert.equal((await call("GET", "/reports", { "x-api-key": "rk_" + "B".repeat(46) })).status, 401);
      assert.equal((await call("GET", "/reports")).status, 401);
      const t = await login(env.RAMPART_WRITER_EMAIL);
      assert.equal((await call("GET", "/reports", bearer(t.access_token))).status, 401, "a session is not a key");
      assert.equal((await call("GET", "/me", { "x-api-key": env.RAMPART_KEY_WRITE })).status, 401, "a key is not a session");
    });

    test("a recent second factor where asked", async () => {
      assert.equal((await call("POST", "/settings/danger", bearer(env.RAMPART_TOKEN_MFA_FRESH))).status, 200);
      const t = await login(env.RAMPART_WRITER_EMAIL);
      for (const token of [env.RAMPART_TOKEN_MFA_OLD, t.access_token]) {
        const r = await call("POST", "/settings/danger", bearer(token));
        assert.equal(r.status, 401);
        assert.equal(r.body.code, "mfa_required");
        assert.match(r.headers.get("www-authenticate"), /insufficient_user_authentication/);
      }
    });
  });
}
