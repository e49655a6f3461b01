"""What verification costs per request, in microseconds (no network: the JWKS is fetched once
from an in-process fake, as it is cached in production).

usage: .venv/bin/python bench/verify.py
"""

from __future__ import annotations

import asyncio
import sys
import time
import timeit
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.keys import Signer

from rampart_client import AsyncTokenVerifier, Principal, TokenVerifier
from rampart_client.auth import Requirement, check


def jwks_transport(signer: Signer) -> httpx.MockTransport:
    return httpx.MockTransport(lambda _r: httpx.Response(200, json={"keys": [signer.jwk()]}))


def per_call_us(fn: object, n: int) -> float:
    best = min(timeit.repeat(fn, number=n, repeat=5))  # type: ignore[arg-type]
    return best / n * 1e6


def main() -> None:
    n = 2000
    print(f"python {sys.version.split()[0]}, best of 5 runs of {n}")
    for alg in ("EdDSA", "ES256"):
        s = Signer("k1", alg)
        fresh = iter([s.sign(jti=f"j-{i}") for i in range(6 * n + 1)])
        v = TokenVerifier("http://bench", audience="rampart", transport=jwks_transport(s))
        v.verify(next(fresh))
        cold = per_call_us(lambda v=v, f=fresh: v.verify(next(f)), n)
        print(f"TokenVerifier.verify, new token ({alg}):   {cold:7.1f} µs  (signature checked)")
    token = s.sign()
    v.verify(token)
    warm = per_call_us(lambda: v.verify(token), n)
    print(f"TokenVerifier.verify, repeat token:        {warm:7.1f} µs  (cached)")

    s = Signer("k1")
    token = s.sign()
    av = AsyncTokenVerifier("http://bench", audience="rampart", transport=jwks_transport(s))

    async def run_async() -> float:
        await av.verify(token)
        start = time.perf_counter()
        for _ in range(n):
            await av.verify(token)
        return (time.perf_counter() - start) / n * 1e6

    print(f"AsyncTokenVerifier.verify, repeat token:   {asyncio.run(run_async()):7.1f} µs  (cached)")
    claims = TokenVerifier("http://bench", audience="rampart", transport=jwks_transport(s)).verify(token)
    req = Requirement.of(permissions=["orders:write"])
    principal = Principal.of_token(claims, ["orders:read", "orders:write"])
    perm = per_call_us(lambda: check(principal, req), n * 10)
    print(f"permission check (roles cached):           {perm:7.2f} µs")


if __name__ == "__main__":
    main()
