"""Configuration from the environment (set by bench/run), and the password hasher."""
import os

from argon2 import PasswordHasher, Type

JWT_PRIVATE_KEY_FILE = os.environ.get("BENCH_JWT_PRIVATE_KEY_FILE", "jwt_ed25519.pem")
JWT_PUBLIC_KEY_FILE = os.environ.get("BENCH_JWT_PUBLIC_KEY_FILE", "jwt_ed25519.pub.pem")
JWT_ALGORITHM = "EdDSA"
JWT_ISSUER = "rampart"
JWT_AUDIENCE = "rampart"
ACCESS_TOKEN_TTL_SECONDS = 600
SESSION_TTL_SECONDS = 30 * 24 * 3600

RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")

# argon2id, Rampart's defaults (OWASP: 19 MiB, 2 iterations, 1 lane).
password_hasher = PasswordHasher(
    time_cost=int(os.environ.get("ARGON2_ITERATIONS", "2")),
    memory_cost=int(os.environ.get("ARGON2_MEMORY_KIB", "19456")),
    parallelism=int(os.environ.get("ARGON2_PARALLELISM", "1")),
    type=Type.ID,
)
