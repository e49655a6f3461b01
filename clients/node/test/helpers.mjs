// Shared by the tests: the environment the Rust harness (crates/rampart/tests/it/clients.rs)
// sets, sign-in, and forged tokens.
import { createHmac } from "node:crypto";

export const env = process.env;
export const live = Boolean(env.RAMPART_URL);
if (!live && env.CI) throw new Error("RAMPART_URL is not set: the live tests run from `cargo test --test it clients`");
export const skipLive = live ? false : "RAMPART_URL is not set (run through `cargo test --test it clients`)";

export async function login(email) {
  const res = await fetch(`${env.RAMPART_URL}/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password: env.RAMPART_PASSWORD }),
  });
  if (res.status !== 200) throw new Error(`login: ${res.status} ${await res.text()}`);
  return res.json();
}

export const b64 = (buf) => Buffer.from(buf).toString("base64url");

/** The token with its payload changed (roles: admin) and its signature kept. */
export function tampered(token) {
  const [h, p, s] = token.split(".");
  const claims = JSON.parse(Buffer.from(p, "base64url").toString());
  claims.roles = ["admin"];
  return `${h}.${b64(JSON.stringify(claims))}.${s}`;
}

/** Any header; HS256 over `key` when given, else an empty signature (alg none). */
export function unsigned(header, claims, key) {
  const h = b64(JSON.stringify(header));
  const p = b64(JSON.stringify(claims));
  const sig = key ? createHmac("sha256", key).update(`${h}.${p}`).digest() : Buffer.alloc(0);
  return `${h}.${p}.${b64(sig)}`;
}

export const bearer = (t) => ({ authorization: `Bearer ${t}` });
