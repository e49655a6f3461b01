/** Rampart for Node backends: verify access tokens (JWKS cached, EdDSA/ES256 pinned, iss/aud/exp
 * checked, optional online check), gateway assertions and API keys. Express and Fastify
 * integrations: `@rampart/client/express`, `@rampart/client/fastify`. */
export * from "./claims.js";
export * from "./errors.js";
export { Http, TtlCache, type Fetch } from "./http.js";
export { ALGORITHMS, JwksCache, parseJwks, type JwksPolicy, type VerifyingKey } from "./jwks.js";
export { ApiKeyVerifier, looksLikeKey, type ApiKeyVerifierOptions } from "./keys.js";
export { Rampart, check, readCredential, type Credential, type RampartOptions, type Requirement } from "./rampart.js";
export { RoleCache } from "./roles.js";
export { ACCESS_TOKEN_TYP, ASSERTION_TYP, AssertionVerifier, TokenVerifier, type VerifierOptions } from "./tokens.js";
