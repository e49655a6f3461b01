import { Unavailable } from "./errors.js";

export type Fetch = typeof globalThis.fetch;

/** A small HTTP helper over fetch, with a timeout, failing closed with `Unavailable`. */
export class Http {
  readonly baseUrl: string;
  constructor(
    baseUrl: string,
    private readonly fetchImpl: Fetch = globalThis.fetch,
    private readonly timeoutMs = 5000,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
  }

  async request(method: string, path: string, init: { headers?: Record<string, string>; body?: string } = {}) {
    try {
      const res = await this.fetchImpl(this.baseUrl + path, {
        method,
        headers: { "user-agent": "rampart-client-node/0.1", ...init.headers },
        ...(init.body !== undefined ? { body: init.body } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      let json: unknown = undefined;
      try {
        json = await res.json();
      } catch {
        json = undefined;
      }
      return { status: res.status, json };
    } catch (e) {
      throw new Unavailable(`Rampart did not answer ${method} ${path}: ${String(e)}`);
    }
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.map(String) : [];
}

/** A bounded TTL cache (the clock in milliseconds is passed in for tests). */
export class TtlCache<K, V> {
  private readonly items = new Map<K, { until: number; value: V }>();
  constructor(
    readonly ttlMs: number,
    private readonly maxEntries = 10_000,
    private readonly clock: () => number = Date.now,
  ) {}

  get(key: K): V | undefined {
    if (this.ttlMs <= 0) return undefined;
    const hit = this.items.get(key);
    if (!hit) return undefined;
    if (hit.until <= this.clock()) {
      this.items.delete(key);
      return undefined;
    }
    return hit.value;
  }

  set(key: K, value: V, ttlMs = this.ttlMs): void {
    const ttl = Math.min(ttlMs, this.ttlMs);
    if (ttl <= 0) return;
    this.items.delete(key);
    this.items.set(key, { until: this.clock() + ttl, value });
    while (this.items.size > this.maxEntries) {
      const oldest = this.items.keys().next();
      if (oldest.done) break;
      this.items.delete(oldest.value);
    }
  }
}
