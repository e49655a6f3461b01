"""Refusals as messages and the dark theme, in a real Chromium against the real binary (its own
server: e-mail verification off, the account made by the CLI)."""

import os
import unittest
from urllib.parse import urlparse

from playwright.sync_api import sync_playwright

from harness import ADMIN_EMAIL, PASSWORD, Browser, Rampart

SERVER = None
PW = None
BROWSER = None


def setUpModule():
    global SERVER, PW, BROWSER
    SERVER = Rampart({"RAMPART_ACCOUNTS__VERIFY_EMAIL": "false"})
    PW = sync_playwright().start()
    BROWSER = Browser(PW, os.environ.get("SCREENSHOTS", "target/screenshots"), SERVER.base)


def tearDownModule():
    if BROWSER:
        BROWSER.close()
    if PW:
        PW.stop()
    if SERVER:
        SERVER.stop()


class Pages(unittest.TestCase):
    def test_passkeys(self):
        email = "pat@example.com"
        status, body = SERVER.api("POST", "/v1/auth/register", {"email": email, "password": PASSWORD, "name": "Pat"})
        self.assertEqual(status, 201, body)
        page = BROWSER.page()
        p = page.p
        page.add_virtual_authenticator()

        page.goto("/ui/login")
        p.fill("#email", email)
        p.fill("#password", PASSWORD)
        p.click("main form[action='/ui/login'] button[type=submit]")
        page.wait_for_url("**/ui/account")

        # Add a passkey (the script, through the JSON API with the session's CSRF token).
        page.goto("/ui/account/passkeys")
        self.assertTrue(p.is_hidden(".needs-js"))
        page.check("passkeys-empty")
        p.fill("#passkey-name", "Work laptop")
        p.fill("#passkey-password", PASSWORD)
        p.click("form[data-passkey-register] button[type=submit]")
        page.wait_for_url("**/ui/account/passkeys?done=passkey_added")
        self.assertIn("Work laptop", p.inner_text("#passkey-list"))
        page.check("passkeys")

        # Passwordless sign-in.
        p.click("header button:has-text('Sign out')")
        page.wait_for_url("**/ui/login?done=signed_out")
        page.check("login-passkey")
        p.click("[data-passkey-login] button")
        page.wait_for_url("**/ui/account")
        self.assertIn(email, p.inner_text("main"))

        # The passkey as the second step after the password.
        p.click("header button:has-text('Sign out')")
        page.wait_for_url("**/ui/login?done=signed_out")
        page.goto("/ui/login?rd=/ui/account/sessions")
        p.fill("#email", email)
        p.fill("#password", PASSWORD)
        p.click("main form[action='/ui/login'] button[type=submit]")
        # The second step is a new page: wait for it (is_visible alone does not wait, and
        # raced the navigation on a loaded machine).
        p.wait_for_selector("[data-passkey-step-up] button", state="visible")
        self.assertTrue(p.is_visible("[data-passkey-step-up] button"))
        page.check("step-up-passkey")
        p.click("[data-passkey-step-up] button")
        page.wait_for_url("**/ui/account/sessions")

        # Remove it (a fresh two-factor session stands in for a code).
        page.goto("/ui/account/passkeys")
        p.click("text=Remove")
        page.check("passkey-remove")
        p.fill("#password", PASSWORD)
        p.click("main button[type=submit]")
        page.wait_for_url("**/ui/account/passkeys?done=passkey_removed")
        self.assertEqual(p.locator("#passkey-list").count(), 0)
        self.assertEqual(page.problems, [])
        page.close()

    def test_refusals_and_dark_mode(self):
        page = BROWSER.page(scheme="dark")
        p = page.p
        page.goto("/ui/login")
        p.fill("#email", "nobody@example.com")
        p.fill("#password", "not the password")
        p.click("main button[type=submit]")
        self.assertIn("not right", p.inner_text(".notice"))
        page.check("login-refused-dark")
        # An open redirect attempt lands on the account, never elsewhere.
        page.goto("/ui/login?rd=//evil.example/")
        p.fill("#email", ADMIN_EMAIL)
        p.fill("#password", PASSWORD)
        p.click("main button[type=submit]")
        page.wait_for_url("**/ui/account")
        self.assertFalse([u for u in page.requests if urlparse(u).hostname == "evil.example"], page.requests)
        page.check("account-dark")
        page.goto("/ui/reset?token=rr_not-a-token")
        p.fill("#new_password", "another fine passphrase")
        p.fill("#confirm_password", "another fine passphrase")
        p.click("main button[type=submit]")
        self.assertIn("not valid any more", p.inner_text(".notice"))
        page.check("reset-expired-dark")
        page.close()


if __name__ == "__main__":
    unittest.main()
