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
