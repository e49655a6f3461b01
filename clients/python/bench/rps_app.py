"""The app bench/fastapi_rps.py loads: the same handler without and with ``Depends(current_user)``."""

import os

from fastapi import Depends, FastAPI

from rampart_client import Principal
from rampart_client.fastapi import Rampart, current_user

app = FastAPI()
Rampart(os.environ["RAMPART_URL"], audience="rampart").install(app)


@app.get("/plain")
async def plain() -> dict[str, str]:
    return {"user": "nobody"}


@app.get("/protected")
async def protected(user: Principal = Depends(current_user)) -> dict[str, str]:
    return {"user": user.id}


async def _nobody() -> str:
    return "nobody"


@app.get("/empty-dependency")
async def empty_dependency(user: str = Depends(_nobody)) -> dict[str, str]:
    """FastAPI's own price for any dependency: the floor under ``/protected``."""
    return {"user": user}
