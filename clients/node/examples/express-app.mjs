// An orders API protected by Rampart (Express). Run: node examples/express-app.mjs
// Environment: RAMPART_URL, RAMPART_AUDIENCE, RAMPART_SERVICE_KEY (keys:verify, roles:read,
// tokens:introspect), RAMPART_INTROSPECTION_TTL (seconds, default 2), PORT.
import express from "express";
import { Rampart } from "@rampart/client";
import { rampartExpress } from "@rampart/client/express";

export function buildApp(env = process.env) {
  const auth = rampartExpress(
    new Rampart(env.RAMPART_URL ?? "http://127.0.0.1:8080", {
      audience: env.RAMPART_AUDIENCE ?? "rampart",
      serviceKey: env.RAMPART_SERVICE_KEY,
      introspectionTtlMs: Number(env.RAMPART_INTROSPECTION_TTL ?? "2") * 1000,
    }),
  );
  const app = express();
  app.get("/public", (_req, res) => res.json({ ok: true }));
  app.get("/me", auth.currentUser, (req, res) => res.json({ id: req.rampart.id, roles: req.rampart.roles }));
  app.post("/orders", auth.requirePermissions("orders:write"), (req, res) =>
    res.status(201).json({ created_by: req.rampart.id }),
  );
  app.get("/orders/live", auth.requireUser({ online: true }), (req, res) => res.json({ user: req.rampart.id }));
  app.get("/reports", auth.requireScopes("orders:read"), (req, res) => res.json({ key: req.rampart.key.keyId }));
  app.post("/reports", auth.requireScopes("orders:write"), (req, res) => res.json({ owner: req.rampart.id }));
  app.post("/settings/danger", auth.requireMfa({ maxAge: 300 }), (req, res) => res.json({ user: req.rampart.id }));
  return app;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 3000);
  buildApp().listen(port, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${port}`));
}
