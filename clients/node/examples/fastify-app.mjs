// An orders API protected by Rampart (Fastify). Run: node examples/fastify-app.mjs
import Fastify from "fastify";
import { Rampart } from "@rampart/client";
import { rampartFastify } from "@rampart/client/fastify";

export async function buildApp(env = process.env) {
  const app = Fastify();
  await app.register(rampartFastify, {
    rampart: new Rampart(env.RAMPART_URL ?? "http://127.0.0.1:8080", {
      audience: env.RAMPART_AUDIENCE ?? "rampart",
      serviceKey: env.RAMPART_SERVICE_KEY,
      introspectionTtlMs: Number(env.RAMPART_INTROSPECTION_TTL ?? "2") * 1000,
    }),
  });
  const r = app.rampart;
  app.get("/public", async () => ({ ok: true }));
  app.get("/me", { preHandler: r.currentUser }, async (req) => ({ id: req.rampart.id, roles: req.rampart.roles }));
  app.post("/orders", { preHandler: r.requirePermissions("orders:write") }, async (req, reply) =>
    reply.code(201).send({ created_by: req.rampart.id }),
  );
  app.get("/orders/live", { preHandler: r.requireUser({ online: true }) }, async (req) => ({ user: req.rampart.id }));
  app.get("/reports", { preHandler: r.requireScopes("orders:read") }, async (req) => ({ key: req.rampart.key.keyId }));
  app.post("/reports", { preHandler: r.requireScopes("orders:write") }, async (req) => ({ owner: req.rampart.id }));
  app.post("/settings/danger", { preHandler: r.requireMfa({ maxAge: 300 }) }, async (req) => ({ user: req.rampart.id }));
  return app;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await buildApp();
  await app.listen({ port: Number(process.env.PORT ?? 3000), host: "127.0.0.1" });
}
