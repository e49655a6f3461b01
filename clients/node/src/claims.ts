/** Whether any of `granted` allows the concrete permission `needed` (Rampart's rule:
 * `*` grants everything, `orders:*` every action on orders, else an exact match). */
export function allows(granted: Iterable<string>, needed: string): boolean {
  const resource = needed.split(":", 1)[0];
  for (const g of granted) {
    if (g === "*" || g === needed || (g.endsWith(":*") && g.slice(0, -2) === resource)) return true;
  }
  return false;
}

/** A verified access token (`typ: at+jwt`). */
export interface AccessClaims {
  sub: string;
  sid: string;
  iss: string;
  aud: string;
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
  roles: string[];
  /** `pwd`, `otp`, `hwk`, `user`; `mfa` after more than one factor. */
  amr: string[];
  /** When the user signed in (the session's start); undefined on older tokens. */
  authTime: number | undefined;
  raw: Record<string, unknown>;
}

/** A verified gateway identity assertion (`typ: rampart-assertion+jwt`, 60 s). */
export interface AssertionClaims {
  /** A user id, `apikey:<id>`, or `anonymous`. */
  sub: string;
  sid: string | undefined;
  iss: string;
  aud: string;
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
  roles: string[];
  permissions: string[];
  amr: string[];
  rule: string;
  raw: Record<string, unknown>;
}

export interface ApiKeyInfo {
  keyId: string;
  ownerId: string;
  scopes: string[];
  expiresAt: string | null;
  ratelimit: { limit: number; remaining: number; resetSeconds: number } | null;
}

/** Who is calling, whatever the credential: what a protected route receives. */
export interface Principal {
  kind: "user" | "api_key" | "assertion";
  /** The user's id (an API key's owner). */
  id: string;
  sessionId: string | undefined;
  roles: string[];
  /** A user's from their roles (when resolved), an API key's scopes, an assertion's permissions. */
  permissions: Set<string>;
  amr: string[];
  authTime: number | undefined;
  token?: AccessClaims;
  key?: ApiKeyInfo;
  assertion?: AssertionClaims;
}

export function principalOfToken(claims: AccessClaims, permissions: Iterable<string> = []): Principal {
  return {
    kind: "user",
    id: claims.sub,
    sessionId: claims.sid || undefined,
    roles: claims.roles,
    permissions: new Set(permissions),
    amr: claims.amr,
    authTime: claims.authTime,
    token: claims,
  };
}

export function principalOfKey(key: ApiKeyInfo): Principal {
  return {
    kind: "api_key",
    id: key.ownerId,
    sessionId: undefined,
    roles: [],
    permissions: new Set(key.scopes),
    amr: [],
    authTime: undefined,
    key,
  };
}

export function principalOfAssertion(a: AssertionClaims): Principal {
  return {
    kind: "assertion",
    id: a.sub,
    sessionId: a.sid,
    roles: a.roles,
    permissions: new Set(a.permissions),
    amr: a.amr,
    authTime: undefined,
    assertion: a,
  };
}

/** Signed in with more than one factor, at most `maxAge` seconds ago (undefined: ever). */
export function mfaWithin(p: Principal, maxAge: number | undefined, nowSecs = Date.now() / 1000): boolean {
  if (!p.amr.includes("mfa")) return false;
  if (maxAge === undefined) return true;
  return p.authTime !== undefined && nowSecs - p.authTime <= maxAge;
}
