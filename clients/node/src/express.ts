/**
 * Express middleware.
 *
 *   const auth = rampartExpress(new Rampart(url, { audience: "rampart", serviceKey }));
 *   app.post("/orders", auth.requirePermissions("orders:write"), (req, res) => res.json(req.rampart));
 *
 * `req.rampart` is the `Principal`; refusals are answered as problem+json (401 with
 * `WWW-Authenticate`, 403, 429, 503).
 */
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Principal } from "./claims.js";
import { RampartError, httpRefusal } from "./errors.js";
import type { Rampart, Requirement } from "./rampart.js";

declare module "express-serve-static-core" {
  interface Request {
    rampart?: Principal;
  }
}

export function refuse(res: Response, e: RampartError): void {
  const { status, body, headers } = httpRefusal(e);
  res.status(status).set(headers).type("application/problem+json").send(JSON.stringify(body));
}

export interface RampartExpress {
  /** Any requirement (permissions, scopes, MFA age, online). */
  require(req?: Requirement): RequestHandler;
  /** A signed-in user (offline check). */
  currentUser: RequestHandler;
  requireUser(opts?: { online?: boolean }): RequestHandler;
  requirePermissions(...permissions: string[]): RequestHandler;
  requireScopes(...scopes: string[]): RequestHandler;
  requireMfa(opts?: { maxAge?: number }): RequestHandler;
  /** `X-Rampart-Jwt-Assertion` (needs `assertionAudience`). */
  gatewayIdentity: RequestHandler;
}

export function rampartExpress(rampart: Rampart): RampartExpress {
  const handler =
    (run: (req: Request) => Promise<Principal>): RequestHandler =>
    (req: Request, res: Response, next: NextFunction) => {
      run(req).then(
        (p) => {
          req.rampart = p;
          next();
        },
        (e: unknown) => (e instanceof RampartError ? refuse(res, e) : next(e)),
      );
    };
  const require = (r: Requirement = {}) => handler((req) => rampart.authorize(req.headers, r));
  return {
    require,
    currentUser: require(),
    requireUser: (o = {}) => require(o.online !== undefined ? { online: o.online } : {}),
    requirePermissions: (...permissions) => require({ permissions }),
    requireScopes: (...scopes) => require({ scopes }),
    requireMfa: (o = {}) => require(o.maxAge !== undefined ? { mfa: true, mfaMaxAge: o.maxAge } : { mfa: true }),
    gatewayIdentity: handler((req) => rampart.assertion(req.get("x-rampart-jwt-assertion"))),
  };
}
