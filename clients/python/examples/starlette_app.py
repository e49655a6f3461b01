"""An orders API protected by Rampart (Starlette middleware + ``requires``)."""

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rampart_client import AsyncRampart
from rampart_client.starlette import RampartMiddleware, principal_of, requires

rampart = AsyncRampart(
    os.environ.get("RAMPART_URL", "http://127.0.0.1:8080"),
    audience=os.environ.get("RAMPART_AUDIENCE", "rampart"),
    service_key=os.environ.get("RAMPART_SERVICE_KEY"),
)


async def public(request: Request) -> Response:
    who = principal_of(request)
    return JSONResponse({"user": who.id if who else None})


@requires()
async def me(request: Request) -> Response:
    who = principal_of(request)
    assert who is not None
    return JSONResponse({"id": who.id, "kind": who.kind})


@requires("orders:write")
async def create_order(request: Request) -> Response:
    who = principal_of(request)
    assert who is not None
    return JSONResponse({"created_by": who.id}, status_code=201)


app = Starlette(
    routes=[
        Route("/public", public),
        Route("/me", me),
        Route("/orders", create_order, methods=["POST"]),
    ],
    middleware=[Middleware(RampartMiddleware, rampart=rampart)],
)
