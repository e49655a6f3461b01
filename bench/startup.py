#!/usr/bin/env python3
"""Start-up to ready, measured: how long `rampart serve` takes from exec to the first 200 on
/readyz, on SQLite, for a first start (empty directory: creates the database, runs the
migrations, generates the master key) and for a restart (everything exists).

Usage: python3 bench/startup.py [runs]   (builds the release binary first)
"""
import statistics, subprocess, sys, tempfile, time, urllib.request

from harness import BINARY, base_env, build_release, free_port

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20


def start_once(workdir):
    port = free_port()
    env = base_env(port)
    binary = BINARY
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary, "serve"], cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = t0 + 10
        while time.perf_counter() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return (time.perf_counter() - t0) * 1000
            except OSError:
                time.sleep(0.001)
        raise SystemExit("not ready within 10 s")
    finally:
        proc.terminate()
        proc.wait()


def main():
    build_release()
    first, restart = [], []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as d:
            first.append(start_once(d))
            restart.append(start_once(d))
    print(f"rampart serve, SQLite, {RUNS} runs, exec -> first 200 on /readyz (ms):")
    for name, xs in (("first start (migrate + key)", first), ("restart", restart)):
        xs.sort()
        print(f"  {name:28s} median {statistics.median(xs):6.1f}  p90 {xs[int(len(xs) * 0.9) - 1]:6.1f}  max {xs[-1]:6.1f}")


if __name__ == "__main__":
    main()
