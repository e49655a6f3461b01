/**
 * A Fastify plugin.
 *
 *   await app.register(rampartFastify, { rampart: new Rampart(url, { audience: "rampart", serviceKey }) });
 *   app.post("/orders", { preHandler: app.rampart.requirePermissions("orders:write") }, async (req) => req.rampart);
 *
 * `request.rampart` is the `Principal`; refusals are answered as problem+json.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from "fastify";
import type { Principal } from "./claims.js";
import { RampartError, httpRefusal } from "./errors.js";
import type { Rampart, Requirement } from "./rampart.js";

export interface RampartFastify {
  require(req?: Requirement): preHandlerAsyncHookHandler;
  currentUser: preHandlerAsyncHookHandler;
  requireUser(opts?: { online?: boolean }): preHandlerAsyncHookHandler;
  requirePermissions(...permissions: string[]): preHandlerAsyncHookHandler;
  requireScopes(...scopes: string[]): preHandlerAsyncHookHandler;
  requireMfa(opts?: { maxAge?: number }): preHandlerAsyncHookHandler;
  gatewayIdentity: preHandlerAsyncHookHandler;
  rampart: Rampart;
}

declare module "fastify" {
  interface FastifyInstance {
    rampart: RampartFastify;
  }
  interface FastifyRequest {
    rampart: Principal | null;
  }
}

async function refuse(reply: FastifyReply, e: RampartError): Promise<void> {
  const { status, body, headers } = httpRefusal(e);
  await reply.code(status).headers(headers).type("application/problem+json").send(body);
}

function guard(run: (req: FastifyRequest) => Promise<Principal>): preHandlerAsyncHookHandler {
  return async function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
    try {
      request.rampart = await run(request);
    } catch (e) {
      if (e instanceof RampartError) return refuse(reply, e);
      throw e;
    }
  };
}

async function plugin(app: FastifyInstance, opts: { rampart: Rampart }): Promise<void> {
  const rampart = opts.rampart;
  const require = (r: Requirement = {}) => guard((req) => rampart.authorize(req.headers, r));
  app.decorateRequest("rampart", null);
  app.decorate("rampart", {
    rampart,
    require,
    currentUser: require(),
    requireUser: (o: { online?: boolean } = {}) => require(o.online !== undefined ? { online: o.online } : {}),
    requirePermissions: (...permissions: string[]) => require({ permissions }),
    requireScopes: (...scopes: string[]) => require({ scopes }),
    requireMfa: (o: { maxAge?: number } = {}) => require(o.maxAge !== undefined ? { mfa: true, mfaMaxAge: o.maxAge } : { mfa: true }),
    gatewayIdentity: guard((req) => {
      const h = req.headers["x-rampart-jwt-assertion"];
      return rampart.assertion(Array.isArray(h) ? h[0] : h);
    }),
  } satisfies RampartFastify);
}

// Not encapsulated (what fastify-plugin does): the decorations reach the routes of the app.
(plugin as unknown as Record<symbol, boolean>)[Symbol.for("skip-override")] = true;

export const rampartFastify = plugin;
export default plugin;
