/** What a user's roles grant: `GET /v1/admin/roles` (service key holding `roles:read`), cached
 * `ttlMs` (default 30 000), so a permission check costs no request. Unknown roles grant nothing. */
import { Unavailable } from "./errors.js";
import { Http, isObject, strings } from "./http.js";

export const ROLES_PATH = "/v1/admin/roles";

export class RoleCache {
  private table: Map<string, string[]> | undefined;
  private at = 0;
  private inflight: Promise<void> | undefined;
  fetches = 0;

  constructor(
    private readonly http: Http,
    private readonly serviceKey: string | undefined,
    private readonly ttlMs = 30_000,
    private readonly clock: () => number = Date.now,
  ) {}

  private async load(): Promise<void> {
    if (!this.serviceKey) throw new Unavailable("permission checks need a serviceKey holding roles:read");
    try {
      const res = await this.http.request("GET", ROLES_PATH, { headers: { "x-api-key": this.serviceKey } });
      if (res.status !== 200 || !isObject(res.json) || !Array.isArray(res.json.items)) {
        throw new Unavailable(`${ROLES_PATH} answered HTTP ${res.status} (does the service key hold roles:read?)`);
      }
      const table = new Map<string, string[]>();
      for (const item of res.json.items) {
        if (isObject(item) && typeof item.name === "string") table.set(item.name, strings(item.permissions));
      }
      this.table = table;
      this.at = this.clock();
      this.fetches += 1;
    } catch (e) {
      if (!this.table) throw e;
    }
  }

  async permissions(roles: readonly string[]): Promise<Set<string>> {
    if (!this.table || this.clock() - this.at >= this.ttlMs) {
      this.inflight ??= this.load().finally(() => {
        this.inflight = undefined;
      });
      await this.inflight;
    }
    const out = new Set<string>();
    for (const r of roles) for (const p of this.table?.get(r) ?? []) out.add(p);
    return out;
  }
}
