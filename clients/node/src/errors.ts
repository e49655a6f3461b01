/** Every refusal this package raises carries a stable snake_case `code`. */
export class RampartError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * A bearer token or gateway assertion refused (401): `token_missing`, `token_malformed`,
 * `token_algorithm`, `token_type`, `token_unknown_key`, `token_signature`, `token_issuer`,
 * `token_audience`, `token_expired`, `token_not_yet_valid`, `token_inactive` (online check).
 */
export class InvalidToken extends RampartError {}

/** An API key refused: `unknown`, `expired`, `revoked`, `malformed`, `rate_limited` (429). */
export class InvalidApiKey extends RampartError {
  constructor(
    code: string,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(code, message);
  }
}

/** Authenticated but not allowed (403): `forbidden` or `insufficient_scope`. */
export class Forbidden extends RampartError {
  constructor(
    code: string,
    message: string,
    readonly missing: readonly string[] = [],
  ) {
    super(code, message);
  }
}

/** No recent enough second factor (401 `mfa_required`, RFC 9470 step-up). */
export class StepUpRequired extends RampartError {
  constructor(
    message: string,
    readonly maxAge?: number,
  ) {
    super("mfa_required", message);
  }
}

/** Rampart could not be asked: fail closed (503). */
export class Unavailable extends RampartError {
  constructor(message: string) {
    super("unavailable", message);
  }
}

export interface HttpRefusal {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string>;
}

function problem(status: number, code: string, title: string, detail: string, extra: Record<string, unknown> = {}) {
  const body: Record<string, unknown> = { type: `urn:rampart:problem:${code}`, title, status, detail, code };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) body[k] = v;
  return body;
}

/** The status, problem document and headers to answer for a refusal. */
export function httpRefusal(e: RampartError): HttpRefusal {
  if (e instanceof InvalidToken) {
    if (e.code === "token_missing") {
      return {
        status: 401,
        body: problem(401, "unauthenticated", "Authentication required", e.message),
        headers: { "WWW-Authenticate": 'Bearer realm="rampart"' },
      };
    }
    return {
      status: 401,
      body: problem(401, "invalid_token", "Invalid token", e.message, { reason: e.code }),
      headers: { "WWW-Authenticate": 'Bearer realm="rampart", error="invalid_token"' },
    };
  }
  if (e instanceof InvalidApiKey) {
    if (e.code === "rate_limited") {
      const headers: Record<string, string> = e.retryAfter !== undefined ? { "Retry-After": String(e.retryAfter) } : {};
      return { status: 429, body: problem(429, "rate_limited", "Too many requests", e.message), headers };
    }
    return {
      status: 401,
      body: problem(401, "invalid_api_key", "Invalid API key", e.message, { reason: e.code }),
      headers: { "WWW-Authenticate": 'Bearer realm="rampart", error="invalid_token"' },
    };
  }
  if (e instanceof StepUpRequired) {
    let h = 'Bearer realm="rampart", error="insufficient_user_authentication"';
    if (e.maxAge !== undefined) h += `, max_age="${e.maxAge}"`;
    return {
      status: 401,
      body: problem(401, e.code, "Second factor required", e.message, { max_age: e.maxAge }),
      headers: { "WWW-Authenticate": h },
    };
  }
  if (e instanceof Forbidden) {
    return {
      status: 403,
      body: problem(403, e.code, "Forbidden", e.message, { missing: e.missing.length ? [...e.missing] : undefined }),
      headers: {},
    };
  }
  if (e instanceof Unavailable) {
    return { status: 503, body: problem(503, "unavailable", "Authentication unavailable", "Rampart could not be asked"), headers: {} };
  }
  return { status: 401, body: problem(401, e.code, "Unauthorized", e.message), headers: {} };
}
