#!/usr/bin/env python3
"""Login timing: a wrong password for a known e-mail vs any password for an unknown e-mail.

The issue's bar: the two medians within 10 % and byte-identical 401 bodies, so response time
and body reveal nothing about which accounts exist. (The test suite proves the structural
half deterministically: both paths verify exactly one argon2 hash. This measures the clock.)

Usage: python3 bench/login_timing.py [rounds]   (builds the release binary first)
Runs `rampart serve` on SQLite in a temporary directory with throttling loosened so that the
measurement is not cut short by the lockout; attempts alternate known/unknown to share any
drift of the machine.
"""
import json, statistics, sys, tempfile, time, urllib.error, urllib.request

from harness import base_env, build_release, free_port, serving

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 200


def post(base, path, body, request_id="bench"):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", "x-request-id": request_id})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            data, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        data, status = e.read(), e.code
    return (time.perf_counter() - t0) * 1000, status, data


def main():
    build_release()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = base_env(port, RAMPART_LOGIN__MAX_FAILURES="1000000", RAMPART_LOGIN__IP_MAX_FAILURES="1000000",
                   RAMPART_LOGIN__DELAY_BASE_MS="0")
    with tempfile.TemporaryDirectory() as d, serving(d, env):
        _, status, _ = post(base, "/v1/auth/register", {"email": "known@example.com", "password": "correct horse battery staple"})
        assert status == 201, status
        for _ in range(10):  # warm-up (the dummy hash is made on first use)
            post(base, "/v1/auth/login", {"email": "nobody@example.com", "password": "wrong password!"})
            post(base, "/v1/auth/login", {"email": "known@example.com", "password": "wrong password!"})
        known, unknown, bodies = [], [], set()
        for i in range(ROUNDS):
            pair = [("known", "known@example.com"), ("unknown", f"nobody{i}@example.com")]
            if i % 2:
                pair.reverse()
            for kind, email in pair:
                ms, status, body = post(base, "/v1/auth/login", {"email": email, "password": "wrong password!"})
                assert status == 401, status
                bodies.add(body)
                (known if kind == "known" else unknown).append(ms)
    mk, mu = statistics.median(known), statistics.median(unknown)
    diff = abs(mk - mu) / max(mk, mu) * 100
    print(f"login 401 timing, SQLite, release, {ROUNDS} rounds each (ms):")
    for name, xs in (("known e-mail, wrong password", known), ("unknown e-mail", unknown)):
        xs.sort()
        print(f"  {name:30s} median {statistics.median(xs):6.2f}  p90 {xs[int(len(xs) * 0.9) - 1]:6.2f}")
    print(f"  medians differ by {diff:.1f} % (bar: 10 %); distinct 401 bodies: {len(bodies)} (bar: 1)")
    if diff > 10 or len(bodies) != 1:
        sys.exit(1)


if __name__ == "__main__":
    main()
