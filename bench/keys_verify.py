#!/usr/bin/env python3
"""API key verify path under HTTP load: `POST /v1/keys/verify` with a cached key, measured with
wrk (installed from Debian's packages if missing), against `GET /healthz` on the same server as
the floor of what any route can do here.

Usage: python3 bench/keys_verify.py [seconds] [connections]   (builds the release binary first)
Runs `rampart serve` on SQLite in a temporary directory, creates an admin, a service key with
`keys:verify` and a client key, warms the cache, then runs wrk on each endpoint in turn.
"""
import json, os, re, shutil, subprocess, sys, tempfile, urllib.request

from harness import BINARY, base_env, build_release, free_port, serving

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
CONNS = int(sys.argv[2]) if len(sys.argv) > 2 else 32


def call(base, method, path, body=None, headers=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None,
                                 method=method, headers={"content-type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def wrk(url, script=None):
    cmd = ["wrk", "-t2", f"-c{CONNS}", f"-d{SECONDS}s", "--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"\s+(50|99)%\s+([\d.]+\w+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, lat.get("50"), lat.get("99"), int(non2xx.group(1)) if non2xx else 0


def main():
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL)
    build_release()
    binary = BINARY
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = base_env(port)
    with tempfile.TemporaryDirectory() as d:
        pw = "a long measuring passphrase"
        subprocess.run([binary, "users", "create", "--email", "bench@example.com", "--role", "admin", "--password-stdin"],
                       cwd=d, env=env, input=pw, text=True, check=True, capture_output=True)
        with serving(d, env):
            token = call(base, "POST", "/v1/auth/login", {"email": "bench@example.com", "password": pw})["access_token"]
            auth = {"authorization": f"Bearer {token}"}
            service = call(base, "POST", "/v1/me/api-keys", {"name": "svc", "scopes": ["keys:verify"]}, auth)["key"]
            client = call(base, "POST", "/v1/me/api-keys", {"name": "client", "scopes": ["anime:read"]}, auth)["key"]
            answer = call(base, "POST", "/v1/keys/verify", {"key": client, "scope": "anime:read"}, {"x-api-key": service})
            assert answer["valid"], answer
            script = os.path.join(d, "verify.lua")
            with open(script, "w") as f:
                f.write('wrk.method = "POST"\n'
                        f'wrk.headers["content-type"] = "application/json"\n'
                        f'wrk.headers["x-api-key"] = "{service}"\n'
                        f'wrk.body = \'{json.dumps({"key": client, "scope": "anime:read"})}\'\n')
            rows = [("GET /healthz (floor)",) + wrk(base + "/healthz"),
                    ("POST /v1/keys/verify (cached)",) + wrk(base + "/v1/keys/verify", script)]
    print(f"wrk, {SECONDS} s, {CONNS} connections, 2 threads, release, SQLite, loopback:")
    print(f"  {'endpoint':32s} {'req/s':>10s} {'p50':>9s} {'p99':>9s} {'non-2xx':>8s}")
    for name, rps, p50, p99, bad in rows:
        print(f"  {name:32s} {rps:10.0f} {p50:>9s} {p99:>9s} {bad:8d}")
    print(f"  verify / floor: {rows[1][1] / rows[0][1] * 100:.0f} %")


if __name__ == "__main__":
    main()
