// What verification costs per request, in microseconds (no network: the JWKS comes once from
// an injected fetch, as it is cached in production). usage: node bench/verify.mjs
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { TokenVerifier, check, principalOfToken } from "@rampart/client";

const N = 5000;

async function setup(alg) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { crv: alg === "EdDSA" ? "Ed25519" : undefined });
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg, use: "sig" };
  const fetch = async () => Response.json({ keys: [jwk] });
  const now = Math.floor(Date.now() / 1000);
  const sign = (jti) =>
    new SignJWT({ iss: "rampart", aud: "rampart", sub: "u", sid: "s", jti, iat: now, nbf: now, exp: now + 600, roles: ["orders-writer"], amr: ["pwd"] })
      .setProtectedHeader({ alg, typ: "at+jwt", kid: "k1" })
      .sign(privateKey);
  return { verifier: new TokenVerifier("http://bench", { audience: "rampart", fetch }), sign };
}

async function perCall(fn, n) {
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await fn(i + r * n);
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1000 / n);
  }
  return best;
}

console.log(`node ${process.version}, best of 5 runs of ${N}`);
for (const alg of ["EdDSA", "ES256"]) {
  const { verifier, sign } = await setup(alg);
  const tokens = await Promise.all(Array.from({ length: 5 * N + 1 }, (_, i) => sign(`j-${i}`)));
  await verifier.verify(tokens[5 * N]);
  const cold = await perCall((i) => verifier.verify(tokens[i]), N);
  console.log(`TokenVerifier.verify, new token (${alg}): ${cold.toFixed(1).padStart(7)} µs  (signature checked)`);
  if (alg === "ES256") {
    const warm = await perCall(() => verifier.verify(tokens[0]), N);
    console.log(`TokenVerifier.verify, repeat token:       ${warm.toFixed(1).padStart(7)} µs  (cached)`);
    const claims = await verifier.verify(tokens[0]);
    const p = principalOfToken(claims, ["orders:read", "orders:write"]);
    const perm = await perCall(() => check(p, { permissions: ["orders:write"] }), N * 10);
    console.log(`permission check (roles cached):          ${perm.toFixed(2).padStart(7)} µs`);
  }
}
