"""Sign-in with an OpenID provider through the sign-in page, in a real Chromium: the certified
`oidc-provider` (crates/rampart-testkit/oidc-provider, its interactions answered without pages)
on a loopback port, and the real binary configured with it as provider `test`."""

import json
import os
import subprocess
import tempfile
import unittest
import urllib.request

from playwright.sync_api import sync_playwright

from harness import Browser, Rampart

HERE = os.path.dirname(os.path.abspath(__file__))
IDP_DIR = os.path.join(HERE, "..", "..", "..", "rampart-testkit", "oidc-provider")
# The test client the provider registers (rampart_testkit::oidc::CLIENT_ID / CLIENT_SECRET).
CLIENT_ID = "rampart-test"
CLIENT_SECRET = "rampart-test-secret-0123456789abcdef"

IDP = None
SERVER = None
PW = None
BROWSER = None
CONFIG = None


def control(path, body):
    req = urllib.request.Request(IDP["issuer"] + path, data=json.dumps(body).encode(), method="POST")
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as res:
        assert res.status < 300, res.status


def setUpModule():
    global IDP, SERVER, PW, BROWSER, CONFIG
    proc = subprocess.Popen(
        ["node", "idp.mjs"], cwd=IDP_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()
    assert line.startswith("listening on "), line
    IDP = {"proc": proc, "issuer": f"http://127.0.0.1:{line.split()[-1]}"}
    CONFIG = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    CONFIG.write(
        "[federation]\nauto_register = true\nallow_networks = [\"127.0.0.1/32\"]\n\n"
        "[[federation.providers]]\nname = \"test\"\nkind = \"oidc\"\ndisplay_name = \"Test IdP\"\n"
        f"client_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\nissuer = \"{IDP['issuer']}\"\n"
    )
    CONFIG.close()
    SERVER = Rampart({"RAMPART_CONFIG": CONFIG.name, "RAMPART_ACCOUNTS__VERIFY_EMAIL": "false"})
    control("/_test/setup", {"redirect_uris": [SERVER.base + "/v1/auth/oauth/test/callback"]})
    control("/_test/account", {"sub": "idp-ada", "email": "ada@example.com", "email_verified": True, "name": "Ada"})
    PW = sync_playwright().start()
    BROWSER = Browser(PW, os.environ.get("SCREENSHOTS", "target/screenshots"), SERVER.base)


def tearDownModule():
    if BROWSER:
        BROWSER.close()
    if PW:
        PW.stop()
    if SERVER:
        SERVER.stop()
    if IDP:
        IDP["proc"].stdin.close()
        IDP["proc"].wait(timeout=10)
    if CONFIG:
        os.unlink(CONFIG.name)


class Federation(unittest.TestCase):
    def test_sign_in_with_the_provider_from_the_sign_in_page(self):
        page = BROWSER.page()
        p = page.p
        page.goto("/ui/login?rd=/ui/account/sessions")
        button = p.locator("a.button:has-text('Test IdP')")
        self.assertEqual(button.count(), 1)
        # The passkey button and the providers share one "or" (Chromium offers passkeys here).
        p.locator("[data-passkey-login]:not([hidden])").wait_for()
        self.assertEqual(p.locator(".or:visible").count(), 1)
        page.check("login-with-provider")
        # To the provider (authorization code + PKCE), which signs Ada in at once, and back:
        # the account is made (auto_register), verified as the provider says, and `rd` kept.
        button.click()
        page.wait_for_url("**/ui/account/sessions")
        page.check("sessions-after-provider")
        page.goto("/ui/account")
        text = p.inner_text("main")
        self.assertIn("ada@example.com", text)
        self.assertIn("Verified", text)
        self.assertNotIn("Not verified", text)
        page.check("account-after-provider")


if __name__ == "__main__":
    unittest.main(verbosity=2)
