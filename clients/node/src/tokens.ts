/**
 * Verifiers for access tokens and the gateway's identity assertion.
 *
 * Offline (default): the signature against the cached JWKS, the algorithm pinned to EdDSA or
 * ES256 (the key's own), `typ`, `iss`, `aud`, `exp`, `nbf`. Online (`online: true`): the token
 * is also introspected with a service key holding `tokens:introspect`, so a revoked session is
 * refused within `introspectionTtlMs` (default 2000; 0 asks every time), and the roles are
 * the ones in force now.
 */
import { createHash } from "node:crypto";
import { errors as joseErrors, jwtVerify, decodeProtectedHeader, type JWTPayload } from "jose";
import type { AccessClaims, AssertionClaims } from "./claims.js";
import { InvalidToken, Unavailable } from "./errors.js";
import { type Fetch, Http, TtlCache, isObject, strings } from "./http.js";
import { ALGORITHMS, JwksCache, type JwksPolicy, type VerifyingKey } from "./jwks.js";

export const ACCESS_TOKEN_TYP = "at+jwt";
export const ASSERTION_TYP = "rampart-assertion+jwt";
export const INTROSPECT_PATH = "/v1/auth/introspect";
const MAX_TOKEN_LENGTH = 8192;
const VERIFIED_TTL_MS = 300_000;

export interface VerifierOptions {
  audience: string;
  issuer?: string;
  /** Clock skew forgiven on exp/nbf, seconds (default 30). */
  leeway?: number;
  online?: boolean;
  /** An API key holding `tokens:introspect` (online mode). */
  serviceKey?: string;
  introspectionTtlMs?: number;
  jwks?: JwksPolicy;
  fetch?: Fetch;
  timeoutMs?: number;
  clock?: () => number;
  /** Share one HTTP helper and JWKS cache between verifiers. */
  http?: Http;
  jwksCache?: JwksCache;
}

function header(token: string, typ: string): { alg: string; kid: string } {
  if (!token || token.length > MAX_TOKEN_LENGTH || token.split(".").length !== 3) {
    throw new InvalidToken("token_malformed", "not a compact JWS");
  }
  let h: ReturnType<typeof decodeProtectedHeader>;
  try {
    h = decodeProtectedHeader(token);
  } catch {
    throw new InvalidToken("token_malformed", "unreadable JWS header");
  }
  if (typeof h.alg !== "string" || !(ALGORITHMS as readonly string[]).includes(h.alg)) {
    throw new InvalidToken("token_algorithm", `algorithm ${JSON.stringify(h.alg)} is not accepted`);
  }
  const t = typeof h.typ === "string" ? h.typ.toLowerCase() : "";
  if (t !== typ && t !== `application/${typ}`) throw new InvalidToken("token_type", `typ ${JSON.stringify(t)} is not ${typ}`);
  if (typeof h.kid !== "string" || !h.kid) throw new InvalidToken("token_unknown_key", "token names no key");
  return { alg: h.alg, kid: h.kid };
}

async function verifySigned(
  token: string,
  alg: string,
  key: VerifyingKey,
  o: { issuer: string; audience: string; leeway: number; typ: string },
): Promise<JWTPayload> {
  if (alg !== key.alg) throw new InvalidToken("token_algorithm", "algorithm does not match the key's");
  try {
    const { payload } = await jwtVerify(token, key.key, {
      algorithms: [key.alg],
      issuer: o.issuer,
      audience: o.audience,
      clockTolerance: o.leeway,
      typ: o.typ,
      requiredClaims: ["exp", "iat", "nbf", "iss", "aud", "sub"],
    });
    return payload;
  } catch (e) {
    if (e instanceof joseErrors.JWTExpired) throw new InvalidToken("token_expired", "token has expired");
    if (e instanceof joseErrors.JWSSignatureVerificationFailed) throw new InvalidToken("token_signature", "signature is invalid");
    if (e instanceof joseErrors.JOSEAlgNotAllowed) throw new InvalidToken("token_algorithm", "algorithm is not accepted");
    if (e instanceof joseErrors.JWTClaimValidationFailed) {
      if (e.claim === "aud") throw new InvalidToken("token_audience", "audience is not accepted");
      if (e.claim === "iss") throw new InvalidToken("token_issuer", "issuer is not accepted");
      if (e.claim === "nbf") throw new InvalidToken("token_not_yet_valid", "token is not valid yet");
    }
    throw new InvalidToken("token_malformed", `token is malformed: ${String(e)}`);
  }
}

function num(p: JWTPayload, name: string): number {
  const v = p[name];
  if (typeof v !== "number") throw new InvalidToken("token_malformed", `claim ${name} missing or mistyped`);
  return v;
}

function accessClaims(p: JWTPayload): AccessClaims {
  return {
    sub: String(p.sub),
    sid: typeof p.sid === "string" ? p.sid : "",
    iss: String(p.iss),
    aud: String(p.aud),
    jti: String(p.jti ?? ""),
    iat: num(p, "iat"),
    nbf: num(p, "nbf"),
    exp: num(p, "exp"),
    roles: strings(p.roles),
    amr: strings(p.amr),
    authTime: typeof p.auth_time === "number" ? p.auth_time : undefined,
    raw: { ...p },
  };
}

function assertionClaims(p: JWTPayload): AssertionClaims {
  return {
    sub: String(p.sub),
    sid: typeof p.sid === "string" && p.sid ? p.sid : undefined,
    iss: String(p.iss),
    aud: String(p.aud),
    jti: String(p.jti ?? ""),
    iat: num(p, "iat"),
    nbf: num(p, "nbf"),
    exp: num(p, "exp"),
    roles: strings(p.roles),
    permissions: strings(p.permissions),
    amr: strings(p.amr),
    rule: String(p.rule ?? ""),
    raw: { ...p },
  };
}

const digest = (token: string) => createHash("sha256").update(token).digest("base64");

interface Live {
  active: boolean;
  roles: string[] | undefined;
}

/** Verifies access tokens: `await new TokenVerifier(url, { audience }).verify(token)`. */
export class TokenVerifier {
  readonly http: Http;
  readonly jwks: JwksCache;
  private readonly issuer: string;
  private readonly audience: string;
  private readonly leeway: number;
  private readonly online: boolean;
  private readonly serviceKey: string | undefined;
  private readonly live: TtlCache<string, Live>;
  private readonly verified: TtlCache<string, AccessClaims>;

  constructor(baseUrl: string, o: VerifierOptions) {
    if (!o.audience) throw new Error("audience is required: the aud your Rampart puts in its tokens");
    const clock = o.clock ?? Date.now;
    this.http = o.http ?? new Http(baseUrl, o.fetch, o.timeoutMs);
    this.jwks = o.jwksCache ?? new JwksCache(this.http, o.jwks, clock);
    this.issuer = o.issuer ?? "rampart";
    this.audience = o.audience;
    this.leeway = o.leeway ?? 30;
    this.online = o.online ?? false;
    this.serviceKey = o.serviceKey;
    this.live = new TtlCache(o.introspectionTtlMs ?? 2000, 10_000, clock);
    this.verified = new TtlCache(VERIFIED_TTL_MS, 10_000, clock);
  }

  async verify(token: string, opts: { online?: boolean } = {}): Promise<AccessClaims> {
    const d = digest(token);
    let claims = this.verified.get(d);
    const now = Date.now() / 1000;
    if (claims) {
      if (claims.exp <= now - this.leeway) throw new InvalidToken("token_expired", "token has expired");
      if (claims.nbf > now + this.leeway) throw new InvalidToken("token_not_yet_valid", "token is not valid yet");
    } else {
      const h = header(token, ACCESS_TOKEN_TYP);
      const key = await this.jwks.key(h.kid);
      claims = accessClaims(
        await verifySigned(token, h.alg, key, { issuer: this.issuer, audience: this.audience, leeway: this.leeway, typ: ACCESS_TOKEN_TYP }),
      );
      this.verified.set(d, claims, (claims.exp - now) * 1000);
    }
    if (!(opts.online ?? this.online)) return claims;
    let live = this.live.get(d);
    if (!live) {
      if (!this.serviceKey) throw new Unavailable("online verification needs a serviceKey holding tokens:introspect");
      const res = await this.http.request("POST", INTROSPECT_PATH, {
        headers: { "x-api-key": this.serviceKey, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token }).toString(),
      });
      if (res.status !== 200 || !isObject(res.json) || typeof res.json.active !== "boolean") {
        throw new Unavailable(`introspection answered HTTP ${res.status}`);
      }
      live = { active: res.json.active, roles: Array.isArray(res.json.roles) ? strings(res.json.roles) : undefined };
      this.live.set(d, live, (claims.exp - now) * 1000);
    }
    if (!live.active) throw new InvalidToken("token_inactive", "the session is revoked or over, or the user is disabled");
    return live.roles ? { ...claims, roles: live.roles } : claims;
  }
}

/** Verifies `X-Rampart-Jwt-Assertion`; `audience` is the gateway rule's audience. An access
 * token is refused (`token_type`), as is an assertion presented as an access token. */
export class AssertionVerifier {
  static readonly HEADER = "x-rampart-jwt-assertion";
  readonly jwks: JwksCache;
  private readonly issuer: string;
  private readonly audience: string;
  private readonly leeway: number;

  constructor(baseUrl: string, o: Omit<VerifierOptions, "online" | "serviceKey" | "introspectionTtlMs">) {
    if (!o.audience) throw new Error("audience is required");
    const http = o.http ?? new Http(baseUrl, o.fetch, o.timeoutMs);
    this.jwks = o.jwksCache ?? new JwksCache(http, o.jwks, o.clock ?? Date.now);
    this.issuer = o.issuer ?? "rampart";
    this.audience = o.audience;
    this.leeway = o.leeway ?? 5;
  }

  async verify(assertion: string | undefined | null): Promise<AssertionClaims> {
    if (!assertion) throw new InvalidToken("token_missing", "no identity assertion");
    const h = header(assertion, ASSERTION_TYP);
    const key = await this.jwks.key(h.kid);
    return assertionClaims(
      await verifySigned(assertion, h.alg, key, { issuer: this.issuer, audience: this.audience, leeway: this.leeway, typ: ASSERTION_TYP }),
    );
  }
}
