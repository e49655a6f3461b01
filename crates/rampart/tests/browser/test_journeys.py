"""A person's journeys through the pages, in a real Chromium against the real binary: register,
verify the e-mail from the received message, sign in, enrol TOTP (the secret read from the
page, the code from pyotp), sign out, sign in with TOTP, see two devices and sign the other
out, create an API key and verify it through /v1/keys/verify, revoke it, forgot password and
reset from the e-mail. Every page: no CSP violation or console error, no serious or critical
axe violation, screenshots at desktop and phone width."""

import os
import re
import time
import unittest

import pyotp
from playwright.sync_api import expect, sync_playwright

from harness import PASSWORD, Browser, Rampart, link_in

SERVER = None
PW = None
BROWSER = None


def setUpModule():
    global SERVER, PW, BROWSER
    SERVER = Rampart()
    PW = sync_playwright().start()
    BROWSER = Browser(PW, os.environ.get("SCREENSHOTS", "target/screenshots"), SERVER.base)


def tearDownModule():
    if BROWSER:
        BROWSER.close()
    if PW:
        PW.stop()
    if SERVER:
        SERVER.stop()


def totp_code(secret, offset_steps):
    """The code of the step `offset_steps` from now (the server accepts one step either side;
    a step already used is refused, so consecutive uses take the next one)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


class Journeys(unittest.TestCase):
    EMAIL = "ada@example.com"
    NAME = "Ada Lovelace"

    def test_the_whole_journey(self):
        page = BROWSER.page()
        p = page.p

        # Register.
        page.goto("/ui/register")
        page.check("register")
        p.fill("#name", self.NAME)
        p.fill("#email", self.EMAIL)
        p.fill("#password", "password")
        p.click("main button[type=submit]")
        self.assertIn("Please check what you entered.", p.inner_text(".notice"))
        page.check("register-weak-password")
        p.fill("#password", PASSWORD)
        p.click("main button[type=submit]")
        self.assertEqual(p.inner_text("h1"), "Check your e-mail")
        page.check("register-check-email")

        # Verify the address from the message received.
        link = link_in(SERVER.smtp.wait_for(self.EMAIL, "/ui/verify-email"), "/ui/verify-email")
        page.goto(link)
        page.check("verify-email")
        p.click("main button[type=submit]")
        page.wait_for_url("**/ui/login?done=email_verified")
        self.assertIn("confirmed", p.inner_text(".notice"))
        page.check("login")

        # Sign in with the password.
        p.fill("#email", self.EMAIL)
        p.fill("#password", PASSWORD)
        p.click("main button[type=submit]")
        page.wait_for_url("**/ui/account")
        body = p.inner_text("main")
        self.assertIn(self.NAME, body)
        self.assertIn(self.EMAIL, body)
        self.assertIn("Verified", body)
        page.check("account")

        # Enrol TOTP.
        p.click("nav >> text=Security")
        page.check("security")
        p.click("text=Set up an authenticator app")
        page.check("totp-password")
        p.fill("#password", PASSWORD)
        p.click("main button[type=submit]")
        secret = p.get_attribute("#totp-secret", "data-secret")
        self.assertRegex(secret, r"^[A-Z2-7]{32}$")
        self.assertTrue(p.is_visible("img.qr"))
        page.check("totp-setup")
        p.fill("#code", "000000")
        p.click("form[action='/ui/account/totp/enable'] button[type=submit]")
        self.assertIn("That code is not right", p.inner_text(".notice"))
        self.assertEqual(p.get_attribute("#totp-secret", "data-secret"), secret, "the same secret again")
        p.fill("#code", totp_code(secret, 0))
        p.click("form[action='/ui/account/totp/enable'] button[type=submit]")
        codes = [c.strip() for c in p.locator("#backup-codes code").all_inner_texts()]
        self.assertEqual(len(codes), 10)
        self.assertTrue(p.is_visible("button.copy"), "the copy button is shown with JavaScript")
        page.check("backup-codes")

        # Sign out, and back in with TOTP.
        p.click("header button:has-text('Sign out')")
        page.wait_for_url("**/ui/login?done=signed_out")
        p.fill("#email", self.EMAIL)
        p.fill("#password", PASSWORD)
        p.click("main button[type=submit]")
        self.assertEqual(p.inner_text("h1"), "Confirm it is you")
        page.check("step-up")
        p.fill("#code", totp_code(secret, 1))
        p.click("form:has(#code) button[type=submit]")
        page.wait_for_url("**/ui/account")

        # A second device (a backup code), then sign it out from the first.
        other = BROWSER.page()
        other.goto("/ui/login?rd=/ui/account/sessions")
        other.p.fill("#email", self.EMAIL)
        other.p.fill("#password", PASSWORD)
        other.p.click("main button[type=submit]")
        other.p.click("summary")
        other.p.fill("#backup", codes[0])
        other.p.click("form:has(#backup) button[type=submit]")
        other.wait_for_url("**/ui/account/sessions")

        page.goto("/ui/account/sessions")
        rows = p.locator("ul.rows > li")
        self.assertEqual(rows.count(), 2)
        self.assertEqual(p.locator("li.current").count(), 1)
        self.assertIn("This device", p.inner_text("li.current"))
        page.check("sessions")
        p.click("li:not(.current) button:has-text('Sign out')")
        expect(p.locator("ul.rows > li")).to_have_count(1)
        other.goto("/ui/account")
        other.wait_for_url("**/ui/login?rd=%2Fui%2Faccount")
        self.assertEqual(other.problems, [])
        other.close()
        page.goto("/ui/account/sessions")
        self.assertEqual(p.locator("ul.rows > li").count(), 1, "signed out for good")

        # An API key, verified by a backend through /v1/keys/verify.
        p.click("nav >> text=API keys")
        page.check("keys-empty")
        p.click("text=Create an API key")
        page.check("key-new")
        p.fill("#name", "deploy bot")
        p.fill("#expires_in_days", "30")
        p.fill("#password", PASSWORD)
        p.click("main button[type=submit]")
        key = p.input_value("#new-key")
        self.assertRegex(key, r"^rk_")
        page.check("key-created")
        verifier = {"x-api-key": SERVER.verifier_key}
        status, verdict = SERVER.api("POST", "/v1/keys/verify", {"key": key}, verifier)
        self.assertEqual((status, verdict["valid"]), (200, True), verdict)
        # Its page: the use per hour, then a replacement with a grace period.
        page.goto("/ui/account/keys")
        self.assertIn("deploy bot", p.inner_text("ul.rows"))
        p.click("ul.rows a:has-text('deploy bot')")
        self.assertIn("In all: 1", p.inner_text("main"))
        self.assertNotIn("never", p.inner_text(".facts"), "its use is written before the page reads it")
        self.assertEqual(p.locator("svg.chart rect.bar").count(), 24)
        page.check("key")
        p.select_option("#grace_seconds", "3600")
        p.fill("#password", PASSWORD)
        p.click("form[action$='/rotate'] button[type=submit]")
        new_key = p.input_value("#new-key")
        self.assertNotEqual(new_key, key)
        for k in (key, new_key):
            status, verdict = SERVER.api("POST", "/v1/keys/verify", {"key": k}, verifier)
            self.assertEqual((status, verdict["valid"]), (200, True), verdict)
        page.goto("/ui/account/keys")
        self.assertEqual(p.locator("ul.rows > li").count(), 2)
        self.assertIn("replaced; works until", p.inner_text("ul.rows"))
        page.check("keys")
        for remaining in (1, 0):
            p.click("ul.rows > li:first-child button:has-text('Revoke')")
            expect(p.locator("ul.rows > li")).to_have_count(remaining)
        for k in (key, new_key):
            status, verdict = SERVER.api("POST", "/v1/keys/verify", {"key": k}, verifier)
            self.assertEqual(verdict, {"valid": False, "code": "revoked", "ratelimit": None})

        page.goto("/ui/account/activity")
        self.assertIn("Sign-in", p.inner_text("ul.rows"))
        page.check("activity")
        page.goto("/ui/account/password")
        page.check("password")

        # Forgot the password: reset from the e-mail.
        p.click("header button:has-text('Sign out')")
        page.wait_for_url("**/ui/login?done=signed_out")
        p.click("text=Forgot your password?")
        page.check("forgot")
        p.fill("#email", self.EMAIL)
        p.click("main button[type=submit]")
        self.assertEqual(p.inner_text("h1"), "Check your e-mail")
        page.check("forgot-sent")
        link = link_in(SERVER.smtp.wait_for(self.EMAIL, "/ui/reset"), "/ui/reset")
        page.goto(link)
        page.check("reset")
        new_password = "violet tractor summons eleven harbors"
        p.fill("#new_password", new_password)
        p.fill("#confirm_password", new_password + "!")
        p.click("main button[type=submit]")
        self.assertIn("not the same", p.inner_text(".notice"))
        p.fill("#new_password", new_password)
        p.fill("#confirm_password", new_password)
        p.click("main button[type=submit]")
        page.wait_for_url("**/ui/login?done=password_reset")
        p.fill("#email", self.EMAIL)
        p.fill("#password", new_password)
        p.click("main button[type=submit]")
        p.click("summary")
        p.fill("#backup", codes[1])
        p.click("form:has(#backup) button[type=submit]")
        page.wait_for_url("**/ui/account")

        # Leaving: the account page's danger zone, the password, then signed out with a date.
        p.click("text=Delete my account…")
        page.wait_for_url("**/ui/account/delete")
        self.assertIn("The grace period is 30 days.", p.inner_text("main"))
        page.check("delete-account")
        p.fill("#password", new_password)
        p.click("main button[type=submit]")
        self.assertEqual(p.inner_text("h1"), "Your account is scheduled for erasure")
        page.check("deleted")
        page.goto("/ui/account")
        page.wait_for_url("**/ui/login**")
        self.assertEqual(page.problems, [])
        page.close()


if __name__ == "__main__":
    unittest.main()
