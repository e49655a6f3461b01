"""Shared by the benchmark scripts: build the release binary, pick a port, run `rampart serve`
in a directory until the block ends."""
import contextlib, os, socket, subprocess, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "rampart")


def build_release():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "rampart"], cwd=ROOT, check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(port, **extra):
    """The environment of a server on `port`, quiet logs, plus RAMPART_* overrides."""
    env = {"PATH": os.environ.get("PATH", ""), "RAMPART_SERVER__LISTEN": f"127.0.0.1:{port}",
           "RAMPART_LOG__LEVEL": "warn"}
    env.update(extra)
    return env


def wait_ready(base, timeout=10.0):
    """Polls /readyz until it answers 200; returns the seconds it took."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.001)
    raise SystemExit(f"not ready within {timeout} s")


@contextlib.contextmanager
def serving(workdir, env):
    """`rampart serve` in `workdir` with `env`, ready; stopped when the block ends."""
    proc = subprocess.Popen([BINARY, "serve"], cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = env["RAMPART_SERVER__LISTEN"].rsplit(":", 1)[1]
        wait_ready(f"http://127.0.0.1:{port}")
        yield proc
    finally:
        proc.terminate()
        proc.wait()
