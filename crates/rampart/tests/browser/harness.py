"""What the browser tests run against: the real `rampart` binary (one per test module) with a
real SMTP sink, and a Chromium page that fails the test on any CSP violation or console error,
runs axe-core on every page it is shown, and writes desktop and phone screenshots.

Environment (set by the Rust test `it::browser`): RAMPART_BIN (the binary), SCREENSHOTS (where
the PNGs go), CHROMIUM (the browser executable, default /usr/bin/chromium).
"""

import email
import email.policy
import json
import os
import re
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

PASSWORD = "correct horse battery staple"
ADMIN_EMAIL = "admin@example.com"


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for lettre: EHLO, MAIL, RCPT, DATA, QUIT."""

    def reply(self, line):
        self.wfile.write((line + "\r\n").encode())

    def handle(self):
        self.reply("220 sink ESMTP")
        rcpt = []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode(errors="replace").strip()
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-sink")
                self.reply("250 8BITMIME")
            elif verb == "MAIL":
                rcpt = []
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpt.append(cmd.split(":", 1)[1].strip(" <>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 go on")
                data = b""
                while True:
                    chunk = self.rfile.readline()
                    if not chunk or chunk in (b".\r\n", b".\n"):
                        break
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.server.sink.receive(rcpt, data)
                self.reply("250 OK queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 OK")


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SmtpSink:
    """A loopback SMTP server that keeps every message's text by recipient."""

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _SmtpHandler)
        self.server.sink = self
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def receive(self, rcpt, data):
        msg = email.message_from_bytes(data, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain", "html"))
        text = body.get_content() if body is not None else ""
        with self.lock:
            self.messages.append({"to": rcpt, "subject": str(msg["subject"]), "text": text})

    def wait_for(self, to, contains, timeout=20):
        """The text of the first message to `to` whose text contains `contains`."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                for m in self.messages:
                    if to in m["to"] and contains in m["text"]:
                        self.messages.remove(m)
                        return m["text"]
            time.sleep(0.1)
        raise AssertionError(f"no message to {to} containing {contains!r}; got {self.messages}")

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rampart:
    """`rampart serve` in a temporary directory (SQLite), its mail going to an SmtpSink, and an
    administrator made with `rampart users create` before it starts, holding `verifier_key`, an
    API key with the scope `keys:verify` made with `rampart keys create`."""

    def __init__(self, extra_env=None):
        self.bin = os.environ["RAMPART_BIN"]
        self.dir = tempfile.TemporaryDirectory()
        self.smtp = SmtpSink()
        port = free_port()
        self.base = f"http://localhost:{port}"
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "RAMPART_SERVER__LISTEN": f"127.0.0.1:{port}",
            "RAMPART_LOG__FORMAT": "json",
            "RAMPART_MAIL__TRANSPORT": "smtp",
            "RAMPART_MAIL__SMTP__HOST": "127.0.0.1",
            "RAMPART_MAIL__SMTP__PORT": str(self.smtp.port),
            "RAMPART_MAIL__SMTP__TLS": "none",
            "RAMPART_ACCOUNTS__VERIFY_EMAIL": "true",
            "RAMPART_ACCOUNTS__VERIFY_EMAIL_URL": f"{self.base}/ui/verify-email?token={{token}}",
            "RAMPART_ACCOUNTS__RESET_PASSWORD_URL": f"{self.base}/ui/reset?token={{token}}",
            "RAMPART_WEBAUTHN__ORIGIN": self.base,
            "RAMPART_LOGIN__DELAY_BASE_MS": "0",
        }
        self.env.update(extra_env or {})
        made = subprocess.run(
            [self.bin, "users", "create", "--email", ADMIN_EMAIL, "--role", "admin", "--password-stdin"],
            input=PASSWORD, text=True, capture_output=True, cwd=self.dir.name, env=self.env, timeout=120,
        )
        assert made.returncode == 0, made.stderr + made.stdout
        made = subprocess.run(
            [self.bin, "keys", "create", "--email", ADMIN_EMAIL, "--name", "backend", "--scope", "keys:verify"],
            text=True, capture_output=True, cwd=self.dir.name, env=self.env, timeout=120,
        )
        assert made.returncode == 0, made.stderr + made.stdout
        self.verifier_key = json.loads(made.stdout)["key"]
        self.proc = subprocess.Popen(
            [self.bin, "serve"], cwd=self.dir.name, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.log = []
        deadline = time.time() + 60
        for line in self.proc.stdout:
            self.log.append(line)
            if "ready on http://" in line:
                break
            if time.time() > deadline:
                break
        else:
            raise AssertionError("rampart did not start:\n" + "".join(self.log))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stdout:
            self.log.append(line)

    def api(self, method, path, body=None, headers=None):
        """A JSON request: (status, parsed body or None)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                raw = res.read()
                return res.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, json.loads(raw) if raw else None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.smtp.stop()
        self.dir.cleanup()


def link_in(text, path):
    """The first URL in a message's text whose path starts with `path`."""
    m = re.search(r"https?://[^\s\"'<>]+" + re.escape(path) + r"[^\s\"'<>]*", text)
    assert m, f"no {path} link in: {text}"
    return m.group(0)


class Browser:
    """One Chromium with a watched page per context."""

    def __init__(self, playwright, shots, base):
        self.base = base
        exe = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        self.browser = playwright.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        self.shots = shots
        os.makedirs(shots, exist_ok=True)
        # Imported here: the API conformance run (tests/conformance) uses `Rampart` without a browser.
        from axe_playwright_python.sync_playwright import Axe

        self.axe = Axe()

    def page(self, scheme="light"):
        return Page(self, self.browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme))

    def close(self):
        self.browser.close()


class Page:
    """A page that records console errors and CSP violations; `check` fails on any of them and
    runs axe; `shot` writes the desktop (1280) and phone (390) screenshots."""

    def __init__(self, browser, context):
        self.b = browser
        self.context = context
        self.p = context.new_page()
        self.problems = []
        self.p.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.p.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        cdp = self.cdp = context.new_cdp_session(self.p)
        cdp.on("Log.entryAdded", lambda e: e["entry"].get("source") == "security"
               and self.problems.append(f"security: {e['entry'].get('text')}"))
        cdp.send("Log.enable")
        self.requests = []
        self.p.on("request", lambda r: self.requests.append(r.url))

    def add_virtual_authenticator(self):
        """A platform authenticator (CTAP2, resident keys, user verified) for this page."""
        self.cdp.send("WebAuthn.enable")
        return self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
            "hasUserVerification": True, "isUserVerified": True}})["authenticatorId"]

    def wait_for_url(self, pattern):
        """Waits for the URL; on a time-out the failure shows what the page says instead."""
        try:
            self.p.wait_for_url(pattern, timeout=30000)
        except Exception as e:
            raise AssertionError(f"not at {pattern} but {self.p.url}: {self.p.inner_text('main')}") from e

    def goto(self, path):
        self.p.goto(self.b.base + path if path.startswith("/") else path)
        return self

    def check(self, name):
        """No console error or CSP violation so far; no serious or critical axe violation;
        screenshots at both widths."""
        self.p.wait_for_load_state("load")
        assert not self.problems, f"{name}: {self.problems}"
        results = self.b.axe.run(self.p)
        bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
        assert not bad, f"{name}: axe: " + json.dumps(
            [{"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"]][:3]} for v in bad],
            indent=1)
        self.shot(name)

    def shot(self, name):
        self.p.screenshot(path=os.path.join(self.b.shots, f"{name}-desktop.png"), full_page=True)
        self.p.set_viewport_size({"width": 390, "height": 844})
        self.p.screenshot(path=os.path.join(self.b.shots, f"{name}-phone.png"), full_page=True)
        self.p.set_viewport_size({"width": 1280, "height": 900})

    def close(self):
        self.context.close()
