"""FastAPI's requests per second with ``Depends(current_user)`` against the same route without it
(and with an empty dependency: FastAPI's own price for any dependency).

Serves a JWKS from this process, starts bench/rps_app.py under uvicorn (one worker) and
loads both routes with wrk (``apt-get install wrk``), all on 127.0.0.1. The token is the same
on every request, as a client's is for its lifetime (the verifier's cache then answers).

usage: .venv/bin/python bench/fastapi_rps.py [seconds per run, default 5] [rounds, default 6]
"""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.keys import Signer  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve_jwks(signer: Signer) -> str:
    body = json.dumps({"keys": [signer.jwk()]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def wrk(url: str, token: str, seconds: int) -> float:
    out = subprocess.run(  # noqa: S603
        ["wrk", "-t1", "-c32", f"-d{seconds}s", "-H", f"Authorization: Bearer {token}", url],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert m, out
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert non2xx is None, out
    return float(m.group(1))


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    signer = Signer("bench")
    token = signer.sign(exp=int(time.time()) + 3600)
    port = free_port()
    env = {**os.environ, "RAMPART_URL": serve_jwks(signer)}
    app = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "uvicorn", "rps_app:app", "--port", str(port), "--log-level", "warning"],
        cwd=HERE,
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        wrk(base + "/protected", token, 2)  # warm-up (and the one JWKS fetch)
        results: dict[str, list[float]] = {}
        for round_ in range(rounds):
            for path in ("/plain", "/empty-dependency", "/protected"):
                rps = wrk(base + path, token, seconds)
                results.setdefault(path, []).append(rps)
                print(f"round {round_ + 1} {path:<11} {rps:9.0f} req/s", flush=True)

        # The machine may be shared: runs alternate, and each side's best run is compared, as is
        # the median of each round's own ratio.
        def median_ratio(a: str, b: str) -> float:
            ratios = sorted(p / q for p, q in zip(results[a], results[b], strict=True))
            return ratios[len(ratios) // 2]

        print(f"median of the rounds' ratios: {median_ratio('/protected', '/plain'):.1%}")
        # FastAPI's dependency injection has a price of its own, whatever the dependency does.
        print(
            f"an empty dependency vs none: {median_ratio('/empty-dependency', '/plain'):.1%}; "
            "Depends(current_user) vs an empty dependency: "
            f"{median_ratio('/protected', '/empty-dependency'):.1%}"
        )
        plain, protected = max(results["/plain"]), max(results["/protected"])
        print(
            f"best: without {plain:.0f} req/s, with Depends(current_user) {protected:.0f} req/s "
            f"= {protected / plain:.1%}"
        )
    finally:
        app.terminate()
        app.wait(timeout=10)


if __name__ == "__main__":
    main()
