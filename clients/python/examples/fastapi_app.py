"""An orders API protected by Rampart (FastAPI). Run: uvicorn examples.fastapi_app:app

Environment: RAMPART_URL, RAMPART_AUDIENCE, RAMPART_SERVICE_KEY (an API key holding
keys:verify, roles:read and tokens:introspect), RAMPART_INTROSPECTION_TTL (seconds, default 2).
"""

import os

from fastapi import Depends, FastAPI

from rampart_client import Principal
from rampart_client.fastapi import (
    Rampart,
    current_user,
    require_mfa,
    require_permissions,
    require_scopes,
    require_user,
)

app = FastAPI(title="Orders")
Rampart(
    os.environ.get("RAMPART_URL", "http://127.0.0.1:8080"),
    audience=os.environ.get("RAMPART_AUDIENCE", "rampart"),
    service_key=os.environ.get("RAMPART_SERVICE_KEY"),
    introspection_ttl=float(os.environ.get("RAMPART_INTROSPECTION_TTL", "2")),
).install(app)


@app.get("/public")
async def public() -> dict[str, bool]:
    return {"ok": True}


@app.get("/me")
async def me(user: Principal = Depends(current_user)) -> dict[str, object]:
    return {"id": user.id, "roles": list(user.roles)}


@app.post("/orders", status_code=201)
async def create_order(user: Principal = Depends(require_permissions("orders:write"))) -> dict[str, str]:
    return {"created_by": user.id}


@app.get("/orders/live")
async def live_orders(user: Principal = Depends(require_user(online=True))) -> dict[str, str]:
    """Online: a revoked session is refused within RAMPART_INTROSPECTION_TTL seconds."""
    return {"user": user.id}


@app.get("/reports")
async def reports(key: Principal = Depends(require_scopes("orders:read"))) -> dict[str, object]:
    assert key.key is not None
    return {"key": key.key.key_id, "owner": key.id}


@app.post("/reports")
async def write_report(key: Principal = Depends(require_scopes("orders:write"))) -> dict[str, str]:
    return {"owner": key.id}


@app.post("/settings/danger")
async def danger(user: Principal = Depends(require_mfa(max_age=300))) -> dict[str, str]:
    return {"user": user.id}
