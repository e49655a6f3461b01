"""The FastAPI peer: the same work as Rampart's endpoints, written the way FastAPI users write it.

Run:  uvicorn app:app --host 127.0.0.1 --port P --workers N --no-access-log --log-level warning
(after `python seed.py --password ...` with the same environment).
"""
import hashlib
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from typing import Annotated, Iterator

import jwt
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, FastAPI, Header, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from slowapi import Limiter, _rate_limit_exceeded_handler
from slowapi.errors import RateLimitExceeded
from slowapi.util import get_remote_address
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

import settings
from database import SessionLocal
from models import ApiKey, Session, User, utcnow
from settings import password_hasher

with open(settings.JWT_PRIVATE_KEY_FILE, "rb") as f:
    JWT_PRIVATE_KEY = f.read()
with open(settings.JWT_PUBLIC_KEY_FILE, "rb") as f:
    JWT_PUBLIC_KEY = f.read()

limiter = Limiter(key_func=get_remote_address, storage_uri=settings.RATELIMIT_STORAGE_URI)

app = FastAPI(title="FastAPI peer")
app.state.limiter = limiter
app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)

bearer_scheme = HTTPBearer(auto_error=False)


# ---------------------------------------------------------------- dependencies

def get_db() -> Iterator[DbSession]:
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


DbDep = Annotated[DbSession, Depends(get_db)]

credentials_exception = HTTPException(
    status_code=status.HTTP_401_UNAUTHORIZED,
    detail="invalid_token",
    headers={"WWW-Authenticate": "Bearer"},
)


def get_current_user(
    db: DbDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> User:
    if credentials is None:
        raise credentials_exception
    try:
        claims = jwt.decode(
            credentials.credentials,
            JWT_PUBLIC_KEY,
            algorithms=[settings.JWT_ALGORITHM],
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER,
            options={"require": ["exp", "iat", "sub", "sid"]},
        )
    except jwt.InvalidTokenError:
        raise credentials_exception
    session = db.get(Session, claims["sid"])
    now = utcnow()
    if (
        session is None
        or session.user_id != claims["sub"]
        or session.revoked_at is not None
        or session.expires_at <= now
    ):
        raise credentials_exception
    user = db.get(User, claims["sub"])
    if user is None:
        raise credentials_exception
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def find_api_key(db: DbSession, key: str) -> ApiKey | None:
    return db.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()


def key_problem(api_key: ApiKey | None) -> str | None:
    """Why a key can't be used, or None when it is live."""
    if api_key is None:
        return "unknown"
    if api_key.revoked_at is not None:
        return "revoked"
    if api_key.expires_at is not None and api_key.expires_at <= utcnow():
        return "expired"
    return None


def require_service_key(
    db: DbDep, x_api_key: Annotated[str | None, Header()] = None
) -> ApiKey:
    if not x_api_key:
        raise HTTPException(status_code=401, detail="missing_api_key")
    api_key = find_api_key(db, x_api_key)
    if key_problem(api_key) is not None:
        raise HTTPException(status_code=401, detail="invalid_api_key")
    if "keys:verify" not in api_key.scopes:
        raise HTTPException(status_code=403, detail="insufficient_scope")
    return api_key


# ---------------------------------------------------------------- schemas

class LoginRequest(BaseModel):
    email: str
    password: str


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    refresh_token: str
    session_id: str


class UserOut(BaseModel):
    id: str
    email: str
    name: str | None
    roles: list[str]
    email_verified: bool
    created_at: datetime


class MeResponse(BaseModel):
    user: UserOut


class VerifyKeyRequest(BaseModel):
    key: str
    scope: str | None = None


class KeyValid(BaseModel):
    valid: bool = True
    key_id: str
    owner_id: str
    scopes: list[str]
    expires_at: datetime | None


class KeyInvalid(BaseModel):
    valid: bool = False
    code: str  # unknown | expired | revoked | insufficient_scope


# ---------------------------------------------------------------- endpoints

@app.get("/healthz")
async def healthz():
    return {"status": "ok"}


@app.post("/v1/auth/login", response_model=TokenResponse)
def login(body: LoginRequest, request: Request, db: DbDep):
    # `def`, not `async def`: FastAPI runs it in its threadpool, so argon2 doesn't block the loop.
    invalid = HTTPException(status_code=401, detail="invalid_credentials")
    user = db.scalars(select(User).where(User.email == body.email.lower())).first()
    if user is None:
        raise invalid
    try:
        password_hasher.verify(user.password_hash, body.password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise invalid
    if password_hasher.check_needs_rehash(user.password_hash):
        user.password_hash = password_hasher.hash(body.password)

    now = datetime.now(timezone.utc)
    refresh_token = secrets.token_urlsafe(32)
    session = Session(
        id=str(uuid.uuid4()),
        user_id=user.id,
        refresh_token_hash=hash_key(refresh_token),
        created_at=utcnow(),
        last_active_at=utcnow(),
        expires_at=utcnow() + timedelta(seconds=settings.SESSION_TTL_SECONDS),
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )
    db.add(session)
    db.commit()

    claims = {
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "sub": user.id,
        "sid": session.id,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=settings.ACCESS_TOKEN_TTL_SECONDS),
        "roles": [r.role for r in user.roles],
    }
    access_token = jwt.encode(
        claims, JWT_PRIVATE_KEY, algorithm=settings.JWT_ALGORITHM, headers={"typ": "at+jwt"}
    )
    return TokenResponse(
        access_token=access_token,
        expires_in=settings.ACCESS_TOKEN_TTL_SECONDS,
        refresh_token=refresh_token,
        session_id=session.id,
    )


@app.get("/v1/me", response_model=MeResponse)
def me(user: CurrentUser):
    return MeResponse(
        user=UserOut(
            id=user.id,
            email=user.email,
            name=user.name,
            roles=[r.role for r in user.roles],
            email_verified=user.email_verified,
            created_at=user.created_at,
        )
    )


@app.post("/v1/keys/verify", response_model=KeyValid | KeyInvalid)
def verify_key(
    body: VerifyKeyRequest,
    db: DbDep,
    caller: Annotated[ApiKey, Depends(require_service_key)],
):
    api_key = find_api_key(db, body.key)
    problem = key_problem(api_key)
    if problem is not None:
        return KeyInvalid(code=problem)
    if body.scope is not None and body.scope not in api_key.scopes:
        return KeyInvalid(code="insufficient_scope")
    return KeyValid(
        key_id=api_key.id,
        owner_id=api_key.owner_id,
        scopes=api_key.scopes,
        expires_at=api_key.expires_at,
    )


@app.get("/limited/allow")
@limiter.limit("100000000/minute")
async def limited_allow(request: Request):
    return {"status": "ok"}


@app.get("/limited/reject")
@limiter.limit("1/minute")
async def limited_reject(request: Request):
    return {"status": "ok"}
