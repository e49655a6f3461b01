"""Creates the schema, the bench user and two API keys; prints {"service_key", "client_key"}.

Usage: BENCH_DB=... python seed.py --password 'the bench password'
Also writes the Ed25519 JWT key pair (BENCH_JWT_*_KEY_FILE) if the files don't exist.
"""
import argparse
import hashlib
import json
import os
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete

import settings
from database import SessionLocal, engine
from models import ApiKey, Base, Session, User, UserRole
from settings import password_hasher

EMAIL = "bench@example.com"


def ensure_jwt_keys() -> None:
    if os.path.exists(settings.JWT_PRIVATE_KEY_FILE) and os.path.exists(settings.JWT_PUBLIC_KEY_FILE):
        return
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = os.open(settings.JWT_PRIVATE_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem)
    with open(settings.JWT_PUBLIC_KEY_FILE, "wb") as f:
        f.write(public_pem)


def new_key() -> str:
    # `rk_` + 32 url-safe random characters (24 random bytes); only the sha256 is stored.
    return "rk_" + secrets.token_urlsafe(24)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--password", required=True)
    parser.add_argument("--login-users", type=int, default=0,
                        help="also create login0@example.com … with the same password, for login storms")
    args = parser.parse_args()

    ensure_jwt_keys()
    Base.metadata.create_all(engine)

    service_key, client_key = new_key(), new_key()
    with SessionLocal() as db:
        # Idempotent: a re-run replaces the bench user and its keys.
        old = db.query(User).filter_by(email=EMAIL).first()
        if old is not None:
            db.execute(delete(ApiKey).where(ApiKey.owner_id == old.id))
            db.execute(delete(Session).where(Session.user_id == old.id))
            db.delete(old)
            db.flush()
        user = User(
            email=EMAIL,
            name="Bench User",
            password_hash=password_hasher.hash(args.password),
            email_verified=True,
        )
        db.add(user)
        db.flush()
        db.add(UserRole(user_id=user.id, role="user"))
        for i in range(args.login_users):
            email = f"login{i}@example.com"
            old = db.query(User).filter_by(email=email).first()
            if old is not None:
                db.execute(delete(Session).where(Session.user_id == old.id))
                db.delete(old)
                db.flush()
            other = User(email=email, name=f"Login {i}", password_hash=password_hasher.hash(args.password),
                         email_verified=True)
            db.add(other)
            db.flush()
            db.add(UserRole(user_id=other.id, role="user"))
        for key, name, scopes in (
            (service_key, "bench service", ["keys:verify"]),
            (client_key, "bench client", ["anime:read"]),
        ):
            db.add(
                ApiKey(
                    owner_id=user.id,
                    key_hash=hashlib.sha256(key.encode()).hexdigest(),
                    prefix=key[:8],
                    name=name,
                    scopes=scopes,
                )
            )
        db.commit()
    print(json.dumps({"service_key": service_key, "client_key": client_key}))


if __name__ == "__main__":
    main()
