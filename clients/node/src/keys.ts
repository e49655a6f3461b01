/**
 * API keys, checked with Rampart (`POST /v1/keys/verify`, the service key holding
 * `keys:verify`), one call per required scope, each answer cached `cacheTtlMs` (default 5000)
 * under a hash of the key; `rate_limited` is never cached; strings that cannot be keys are
 * refused without a call.
 */
import { createHash } from "node:crypto";
import type { ApiKeyInfo } from "./claims.js";
import { Forbidden, InvalidApiKey, Unavailable } from "./errors.js";
import { type Fetch, Http, TtlCache, isObject, strings } from "./http.js";

export const VERIFY_PATH = "/v1/keys/verify";
const SHAPE = /^rk_[A-Za-z0-9]{46}$/;

type Answer = { ok: true; info: ApiKeyInfo } | { ok: false; code: string; retryAfter: number | undefined };

export const looksLikeKey = (v: string) => SHAPE.test(v);

export interface ApiKeyVerifierOptions {
  serviceKey: string;
  cacheTtlMs?: number;
  fetch?: Fetch;
  timeoutMs?: number;
  clock?: () => number;
  http?: Http;
}

export class ApiKeyVerifier {
  private readonly http: Http;
  private readonly cache: TtlCache<string, Answer>;
  private readonly serviceKey: string;
  /** Calls made to Rampart (tests). */
  calls = 0;

  constructor(baseUrl: string, o: ApiKeyVerifierOptions) {
    if (!o.serviceKey) throw new Error("serviceKey (an API key holding keys:verify) is required");
    this.serviceKey = o.serviceKey;
    this.http = o.http ?? new Http(baseUrl, o.fetch, o.timeoutMs);
    this.cache = new TtlCache(o.cacheTtlMs ?? 5000, 10_000, o.clock ?? Date.now);
  }

  async verify(key: string, scopes: readonly string[] = []): Promise<ApiKeyInfo> {
    if (!looksLikeKey(key)) throw new InvalidApiKey("malformed", "not an API key");
    const hash = createHash("sha256").update(key).digest("base64");
    const wanted: (string | undefined)[] = scopes.length ? [...new Set(scopes)] : [undefined];
    let info: ApiKeyInfo | undefined;
    for (const scope of wanted) {
      const ck = `${hash} ${scope ?? ""}`;
      let answer = this.cache.get(ck);
      if (!answer) {
        this.calls += 1;
        const res = await this.http.request("POST", VERIFY_PATH, {
          headers: { "x-api-key": this.serviceKey, "content-type": "application/json" },
          body: JSON.stringify(scope === undefined ? { key } : { key, scope }),
        });
        answer = parse(res.status, res.json);
        if (answer.ok || answer.code !== "rate_limited") this.cache.set(ck, answer);
      }
      if (!answer.ok) {
        if (answer.code === "insufficient_scope") throw new Forbidden("insufficient_scope", `the key lacks the scope ${scope}`, [scope ?? ""]);
        throw new InvalidApiKey(answer.code, `API key refused: ${answer.code}`, answer.retryAfter);
      }
      info = answer.info;
    }
    return info as ApiKeyInfo;
  }
}

function parse(status: number, body: unknown): Answer {
  if (status !== 200 || !isObject(body) || typeof body.valid !== "boolean") {
    throw new Unavailable(`/v1/keys/verify answered HTTP ${status}`);
  }
  const rl = isObject(body.ratelimit) ? body.ratelimit : undefined;
  if (!body.valid) {
    return { ok: false, code: String(body.code ?? "unknown"), retryAfter: typeof rl?.reset_seconds === "number" ? rl.reset_seconds : undefined };
  }
  return {
    ok: true,
    info: {
      keyId: String(body.key_id),
      ownerId: String(body.owner_id),
      scopes: strings(body.scopes),
      expiresAt: typeof body.expires_at === "string" ? body.expires_at : null,
      ratelimit: rl
        ? { limit: Number(rl.limit), remaining: Number(rl.remaining), resetSeconds: Number(rl.reset_seconds) }
        : null,
    },
  };
}
