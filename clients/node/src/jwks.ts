import { importJWK, type JWK } from "jose";
import { InvalidToken, Unavailable } from "./errors.js";
import { Http, isObject } from "./http.js";

export const ALGORITHMS = ["EdDSA", "ES256"] as const;
export const JWKS_PATH = "/.well-known/jwks.json";
const MAX_KEYS = 16;
const KTY_CRV: Record<string, [string, string]> = { EdDSA: ["OKP", "Ed25519"], ES256: ["EC", "P-256"] };

export interface VerifyingKey {
  kid: string;
  alg: string;
  key: Awaited<ReturnType<typeof importJWK>>;
}

export interface JwksPolicy {
  /** Refresh the whole set when older than this (ms; default 300 000). */
  maxAgeMs?: number;
  /** An unknown `kid` triggers a refetch only if the last fetch is at least this old (ms; default 30 000). */
  minRefetchIntervalMs?: number;
}

/** The usable keys of a JWKS document: EdDSA (Ed25519) and ES256 (P-256) signing keys with a kid. */
export async function parseJwks(doc: unknown): Promise<Map<string, VerifyingKey>> {
  const keys = new Map<string, VerifyingKey>();
  if (!isObject(doc) || !Array.isArray(doc.keys)) throw new Error("not a JWKS document");
  for (const jwk of doc.keys) {
    if (keys.size >= MAX_KEYS) break;
    if (!isObject(jwk)) continue;
    const { alg, kid, kty, crv } = jwk;
    if (typeof alg !== "string" || !(alg in KTY_CRV) || typeof kid !== "string" || !kid) continue;
    const [wantKty, wantCrv] = KTY_CRV[alg] as [string, string];
    if (kty !== wantKty || crv !== wantCrv || (jwk.use !== undefined && jwk.use !== "sig")) continue;
    try {
      keys.set(kid, { kid, alg, key: await importJWK(jwk as JWK, alg) });
    } catch {
      continue;
    }
  }
  return keys;
}

/**
 * The JWKS, fetched and cached: refreshed when older than `maxAgeMs`; refetched when a token
 * names an unknown kid at most once per `minRefetchIntervalMs`, however many such tokens come.
 * Concurrent callers share one fetch; if a refresh fails, the keys already held stay in use.
 */
export class JwksCache {
  private keys = new Map<string, VerifyingKey>();
  private fetchedAt: number | undefined;
  private attemptedAt: number | undefined;
  private inflight: Promise<void> | undefined;
  /** How many times the JWKS was fetched (tests, metrics). */
  fetches = 0;
  private readonly maxAgeMs: number;
  private readonly minRefetchMs: number;

  constructor(
    private readonly http: Http,
    policy: JwksPolicy = {},
    private readonly clock: () => number = Date.now,
    private readonly path = JWKS_PATH,
  ) {
    this.maxAgeMs = policy.maxAgeMs ?? 300_000;
    this.minRefetchMs = policy.minRefetchIntervalMs ?? 30_000;
  }

  private stale(): boolean {
    return this.fetchedAt === undefined || this.clock() - this.fetchedAt >= this.maxAgeMs;
  }

  private shouldFetch(kid: string): boolean {
    const now = this.clock();
    if (this.stale()) return this.attemptedAt === undefined || now - this.attemptedAt >= 1000;
    if (this.keys.has(kid)) return false;
    return this.attemptedAt === undefined || now - this.attemptedAt >= this.minRefetchMs;
  }

  private async fetchNow(): Promise<void> {
    this.attemptedAt = this.clock();
    this.fetches += 1;
    try {
      const res = await this.http.request("GET", this.path);
      if (res.status !== 200) throw new Unavailable(`JWKS answered HTTP ${res.status}`);
      this.keys = await parseJwks(res.json).catch((e: unknown) => {
        throw new Unavailable(`JWKS is unreadable: ${String(e)}`);
      });
      this.fetchedAt = this.clock();
    } catch (e) {
      if (this.keys.size === 0) throw e;
    }
  }

  async key(kid: string): Promise<VerifyingKey> {
    const hit = this.stale() ? undefined : this.keys.get(kid);
    if (hit) return hit;
    if (this.inflight) {
      await this.inflight;
    } else if (this.shouldFetch(kid)) {
      this.inflight = this.fetchNow().finally(() => {
        this.inflight = undefined;
      });
      await this.inflight;
    }
    const key = this.keys.get(kid);
    if (!key) {
      if (this.keys.size === 0 && this.fetchedAt === undefined) throw new Unavailable("no JWKS could be fetched from Rampart");
      throw new InvalidToken("token_unknown_key", "token is signed by an unknown key");
    }
    return key;
  }
}
