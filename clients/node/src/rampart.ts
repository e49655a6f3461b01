/** `Rampart`: the verifiers behind one object, plus what the Express and Fastify integrations
 * share — reading the credential, the requirement checks, the HTTP answer for each refusal. */
import {
  type Principal,
  allows,
  mfaWithin,
  principalOfAssertion,
  principalOfKey,
  principalOfToken,
} from "./claims.js";
import { Forbidden, InvalidApiKey, InvalidToken, StepUpRequired, Unavailable } from "./errors.js";
import { type Fetch, Http } from "./http.js";
import { JwksCache, type JwksPolicy } from "./jwks.js";
import { ApiKeyVerifier } from "./keys.js";
import { RoleCache } from "./roles.js";
import { AssertionVerifier, TokenVerifier } from "./tokens.js";

export interface RampartOptions {
  /** The `aud` Rampart puts in its access tokens (`tokens.audience`, default "rampart"). */
  audience: string;
  issuer?: string;
  /** An API key holding `keys:verify`, `roles:read`, `tokens:introspect` as needed. */
  serviceKey?: string;
  online?: boolean;
  introspectionTtlMs?: number;
  keyCacheTtlMs?: number;
  rolesTtlMs?: number;
  /** The gateway rule's audience, to verify `X-Rampart-Jwt-Assertion`. */
  assertionAudience?: string;
  leeway?: number;
  jwks?: JwksPolicy;
  fetch?: Fetch;
  timeoutMs?: number;
}

export interface Requirement {
  permissions?: readonly string[];
  /** API-key scopes: the route takes API keys (and not users, unless `users: true`). */
  scopes?: readonly string[];
  mfa?: boolean;
  /** A second factor at most this many seconds ago. */
  mfaMaxAge?: number;
  online?: boolean;
  users?: boolean;
  apiKeys?: boolean;
}

export interface Credential {
  kind: "bearer" | "api_key";
  value: string;
}

type HeaderValue = string | string[] | undefined;
const first = (v: HeaderValue) => (Array.isArray(v) ? v[0] : v);

/** `Authorization: Bearer <jwt>` is a session; `Bearer rk_…` or `X-API-Key: rk_…` an API key. */
export function readCredential(headers: Record<string, HeaderValue>): Credential | undefined {
  const key = first(headers["x-api-key"]);
  if (key) return { kind: "api_key", value: key.trim() };
  const auth = first(headers["authorization"]);
  if (!auth) return undefined;
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(auth);
  if (!m?.[1]) return undefined;
  return { kind: m[1].startsWith("rk_") ? "api_key" : "bearer", value: m[1] };
}

export class Rampart {
  readonly http: Http;
  readonly tokens: TokenVerifier;
  readonly keys: ApiKeyVerifier | undefined;
  readonly roles: RoleCache;
  readonly assertions: AssertionVerifier | undefined;

  constructor(
    readonly baseUrl: string,
    readonly options: RampartOptions,
  ) {
    this.http = new Http(baseUrl, options.fetch, options.timeoutMs);
    const jwksCache = new JwksCache(this.http, options.jwks);
    const common = {
      audience: options.audience,
      http: this.http,
      jwksCache,
      ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
    };
    this.tokens = new TokenVerifier(baseUrl, {
      ...common,
      ...(options.leeway !== undefined ? { leeway: options.leeway } : {}),
      ...(options.online !== undefined ? { online: options.online } : {}),
      ...(options.serviceKey !== undefined ? { serviceKey: options.serviceKey } : {}),
      ...(options.introspectionTtlMs !== undefined ? { introspectionTtlMs: options.introspectionTtlMs } : {}),
    });
    this.keys = options.serviceKey
      ? new ApiKeyVerifier(baseUrl, {
          serviceKey: options.serviceKey,
          http: this.http,
          ...(options.keyCacheTtlMs !== undefined ? { cacheTtlMs: options.keyCacheTtlMs } : {}),
        })
      : undefined;
    this.roles = new RoleCache(this.http, options.serviceKey, options.rolesTtlMs);
    this.assertions = options.assertionAudience
      ? new AssertionVerifier(baseUrl, { ...common, audience: options.assertionAudience })
      : undefined;
  }

  async user(token: string, opts: { online?: boolean; permissions?: boolean } = {}): Promise<Principal> {
    const claims = await this.tokens.verify(token, opts.online !== undefined ? { online: opts.online } : {});
    return principalOfToken(claims, opts.permissions ? await this.roles.permissions(claims.roles) : []);
  }

  async apiKey(key: string, scopes: readonly string[] = []): Promise<Principal> {
    if (!this.keys) throw new Unavailable("API keys need a serviceKey holding keys:verify");
    return principalOfKey(await this.keys.verify(key, scopes));
  }

  async assertion(value: string | undefined): Promise<Principal> {
    if (!this.assertions) throw new Unavailable("assertions need assertionAudience");
    return principalOfAssertion(await this.assertions.verify(value));
  }

  /** Authenticates the request's credential as `req` allows, then checks it. */
  async authorize(headers: Record<string, HeaderValue>, req: Requirement = {}): Promise<Principal> {
    const scopes = req.scopes ?? [];
    const users = req.users ?? scopes.length === 0;
    const apiKeys = req.apiKeys ?? scopes.length > 0;
    const cred = readCredential(headers);
    if (!cred) throw new InvalidToken("token_missing", "no credential");
    if (cred.kind === "bearer" && !users) throw new InvalidApiKey("unknown", "this route takes an API key");
    if (cred.kind === "api_key" && !apiKeys) throw new InvalidToken("token_missing", "this route takes a user's access token, not an API key");
    const permissions = req.permissions ?? [];
    const p =
      cred.kind === "bearer"
        ? await this.user(cred.value, { permissions: permissions.length > 0, ...(req.online !== undefined ? { online: req.online } : {}) })
        : await this.apiKey(cred.value, scopes);
    return check(p, req);
  }
}

/** The checks after authentication: a recent enough second factor, then permissions (users). */
export function check(p: Principal, req: Requirement, nowSecs = Date.now() / 1000): Principal {
  if ((req.mfa || req.mfaMaxAge !== undefined) && !mfaWithin(p, req.mfaMaxAge, nowSecs)) {
    throw new StepUpRequired(`sign in with a second factor${req.mfaMaxAge !== undefined ? ` within ${req.mfaMaxAge} s` : ""}`, req.mfaMaxAge);
  }
  if (p.kind === "user") {
    const missing = (req.permissions ?? []).filter((perm) => !allows(p.permissions, perm));
    if (missing.length) throw new Forbidden("forbidden", `missing permission ${missing.join(", ")}`, missing);
  }
  return p;
}
