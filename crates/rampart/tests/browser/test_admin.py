"""The administrator's console in a real Chromium against the real binary: an administrator
signs in with TOTP, finds a user among 1,000 by typing part of the address, demotes them,
revokes their sessions (their next request fails), blocks an address (a client from it gets
403), views the dashboard after a burst of failed sign-ins (the counts match), filters the
audit log to those failures, exports them and finds the same rows in the file, and runs
"verify chain"; a moderator sees only what `users:read` and `audit:read` allow. Every page: no
CSP violation or console error, no serious or critical axe violation, screenshots at desktop
and phone width, the dashboard in dark too."""

import json
import os
import sqlite3
import subprocess
import time
import unittest
import uuid

import pyotp
from playwright.sync_api import expect

from harness import ADMIN_EMAIL, PASSWORD, Browser, Rampart

SERVER = None
PW = None
BROWSER = None
SECRET = None
TARGET = "grace.hopper@example.com"
MODERATOR = "mod@example.com"
BLOCKED = "198.51.100.23"
FAILURES = 5


def code(offset_steps):
    return pyotp.TOTP(SECRET).at(time.time() + 30 * offset_steps)


def add_users(n):
    """`n` users straight into the database (a fixture: they never sign in)."""
    db = sqlite3.connect(os.path.join(SERVER.dir.name, "rampart-data", "rampart.db"), timeout=30)
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    rows = []
    for i in range(n):
        ms = int(time.time() * 1000) - n + i
        raw = (ms << 80) | (0x7 << 76) | (uuid.uuid4().int & ((1 << 76) - 1))
        rows.append((uuid.UUID(int=raw).bytes, f"user{i:04d}@example.org", f"User {i:04d}", now, now))
    db.executemany("INSERT INTO users (id, email, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)", rows)
    db.executemany("INSERT INTO user_roles (user_id, role_name) VALUES (?, 'user')", [(r[0],) for r in rows])
    db.commit()
    db.close()


def cli_user(email, role):
    made = subprocess.run(
        [SERVER.bin, "users", "create", "--email", email, "--role", role, "--password-stdin"],
        input=PASSWORD, text=True, capture_output=True, cwd=SERVER.dir.name, env=SERVER.env, timeout=120,
    )
    assert made.returncode == 0, made.stderr + made.stdout


def login(email, password=PASSWORD):
    return SERVER.api("POST", "/v1/auth/login", {"email": email, "password": password})


def setUpModule():
    global SERVER, PW, BROWSER, SECRET
    from playwright.sync_api import sync_playwright
    SERVER = Rampart({"RAMPART_SERVER__TRUSTED_PROXIES": '["127.0.0.1/32"]', "RAMPART_ACCOUNTS__VERIFY_EMAIL": "false"})
    # The administrator's authenticator app, enrolled through the API.
    s, body = login(ADMIN_EMAIL)
    assert s == 200, body
    auth = {"authorization": "Bearer " + body["access_token"]}
    s, setup = SERVER.api("POST", "/v1/me/mfa/totp/setup", {"password": PASSWORD}, auth)
    assert s == 200, setup
    SECRET = setup["secret"]
    s, body = SERVER.api("POST", "/v1/me/mfa/totp/enable", {"code": code(-1)}, auth)
    assert s == 200, body
    cli_user(TARGET, "moderator")
    cli_user(MODERATOR, "moderator")
    add_users(1000)
    PW = sync_playwright().start()
    BROWSER = Browser(PW, os.environ.get("SCREENSHOTS", "target/screenshots"), SERVER.base)


def tearDownModule():
    if BROWSER:
        BROWSER.close()
    if PW:
        PW.stop()
    if SERVER:
        SERVER.stop()


def sign_in(page, email, totp=None):
    p = page.p
    page.goto("/ui/login?rd=/ui/admin/")
    p.fill("#email", email)
    p.fill("#password", PASSWORD)
    p.click("main button[type=submit]")
    if totp:
        page.wait_for_url("**/ui/login**")
        p.fill("#code", totp)
        p.click("form:has(#code) button[type=submit]")
    page.wait_for_url("**/ui/admin/")


class Console(unittest.TestCase):
    def test_the_administrators_journey(self):
        page = BROWSER.page()
        p = page.p
        sign_in(page, ADMIN_EMAIL, code(0))
        page.check("admin-dashboard-empty")

        # Find the user among 1,000 by typing part of the address (htmx, no page load).
        p.click("nav.tabs >> text=Users")
        page.wait_for_url("**/ui/admin/users")
        p.wait_for_load_state("load")
        p.fill("#q", "grace.hop")
        # The first page may list her already: wait for htmx's answer to the typing, the one
        # row left (the assertion below then says which).
        expect(p.locator("#results tbody tr")).to_have_count(1)
        p.wait_for_selector("#results a:has-text('grace.hopper@example.com')")
        self.assertEqual(p.locator("#results tbody tr").count(), 1)
        page.check("admin-users-search")
        p.fill("#q", "user099")
        expect(p.locator("#results tbody tr")).to_have_count(10)
        p.fill("#q", "")
        expect(p.locator("#results tbody tr")).to_have_count(50)
        page.check("admin-users")
        p.fill("#q", "grace")
        p.click("#results a:has-text('grace.hopper@example.com')")
        page.wait_for_url("**/ui/admin/users/*")
        page.check("admin-user")

        # Demote: the confirmation first, then the roles change; their session ends.
        s, body = login(TARGET)
        self.assertEqual(s, 200, body)
        token = {"authorization": "Bearer " + body["access_token"]}
        self.assertEqual(SERVER.api("GET", "/v1/me", headers=token)[0], 200)
        p.uncheck("input[name=role][value=moderator]")
        p.check("input[name=role][value=user]")
        p.click("form[action$='/roles'] button[type=submit]")
        self.assertIn("Change the roles of grace.hopper@example.com?", p.inner_text("main"))
        page.check("admin-confirm")
        p.click("main button.danger")
        p.wait_for_url("**done=admin_roles_saved")
        self.assertIn("The roles are saved.", p.inner_text(".notice"))
        self.assertEqual(SERVER.api("GET", "/v1/me", headers=token)[0], 401, "demotion ended the session")

        # Revoke the sessions of a new sign-in: the next request fails.
        s, body = login(TARGET)
        token = {"authorization": "Bearer " + body["access_token"]}
        self.assertEqual(SERVER.api("GET", "/v1/me", headers=token)[0], 200)
        p.reload()
        self.assertEqual(p.locator("form[action$='/sessions/revoke']").count(), 1)
        p.click("form[action$='/sessions/revoke'] button")
        p.wait_for_url("**done=admin_sessions_revoked")
        self.assertEqual(SERVER.api("GET", "/v1/me", headers=token)[0], 401, "revoked")

        # Block an address; the network is checked as it is typed (htmx, whose script is
        # deferred: typed before the page has loaded, the input would find no listener yet).
        p.click("nav.tabs >> text=IP rules")
        page.wait_for_url("**/ui/admin/ip-rules")
        p.wait_for_load_state("load")
        p.fill("#network", "198.51.100.300")
        p.wait_for_selector("#network-check .check-bad")
        p.fill("#network", BLOCKED)
        p.wait_for_selector("#network-check .check-ok")
        p.fill("#reason", "credential stuffing")
        page.check("admin-ip-rules-form")
        p.click("form[action='/ui/admin/ip-rules'] button[type=submit]")
        p.wait_for_url("**done=admin_rule_added")
        self.assertIn(BLOCKED, p.inner_text("#rules"))
        page.check("admin-ip-rules")
        s, _ = SERVER.api("GET", "/healthz", headers={"x-forwarded-for": BLOCKED})
        self.assertEqual(s, 403, "a client from the blocked address")
        self.assertEqual(SERVER.api("GET", "/healthz", headers={"x-forwarded-for": "198.51.100.24"})[0], 200)

        # A burst of failed sign-ins; the dashboard counts them.
        for _ in range(FAILURES):
            s, _ = login("victim@example.net", "not the password")
            self.assertEqual(s, 401)
        p.click("nav.tabs >> text=Dashboard")
        p.click(".segmented a[href$=\"range=1h\"]")
        p.wait_for_url("**range=1h")
        self.assertEqual(p.inner_text("[data-count=sign_ins_failed]"), str(FAILURES))
        self.assertEqual(p.inner_text("[data-count='401']"), str(FAILURES))
        page.check("admin-dashboard")
        dark = BROWSER.page("dark")
        dark.context.add_cookies(page.context.cookies())
        dark.goto("/ui/admin/?range=1h")
        dark.check("admin-dashboard-dark")
        dark.close()

        # The audit log filtered to those failures; the export holds the same rows.
        p.click("nav.tabs >> text=Audit log")
        p.fill("#action", "auth.login")
        p.select_option("#outcome", "failure")
        p.click("form.filters button[type=submit]")
        p.wait_for_url("**outcome=failure**")
        seqs = [int(s) for s in p.eval_on_selector_all("#events tbody tr", "rows => rows.map(r => r.dataset.seq)")]
        self.assertEqual(len(seqs), FAILURES)
        page.check("admin-audit")
        with p.expect_download() as dl:
            p.click("a:has-text('Export JSON Lines')")
        path = dl.value.path()
        with open(path) as f:
            exported = [json.loads(line) for line in f if line.strip()]
        self.assertEqual(sorted(e["seq"] for e in exported), sorted(seqs))
        self.assertTrue(all(e["action"] == "auth.login" and e["outcome"] == "failure" for e in exported))
        p.click(f"#events a:text-is('{seqs[0]}')")
        page.wait_for_url(f"**/ui/admin/audit/{seqs[0]}")
        page.check("admin-audit-event")
        p.click("nav.tabs >> text=Audit log")
        p.click("button:has-text('Verify chain')")
        p.wait_for_url("**/ui/admin/audit/verify")
        self.assertIn("Chain intact", p.inner_text("#verdict"))
        page.check("admin-audit-verify")

        p.click("nav.tabs >> text=Roles")
        page.check("admin-roles")
        p.click("nav.tabs >> text=API keys")
        self.assertIn("backend", p.inner_text("#keys"))
        page.check("admin-keys")
        p.click("nav.tabs >> text=Gateway")
        p.fill("#url", "https://app.example.com/orders/7")
        p.click("form.filters button[type=submit]")
        p.wait_for_selector("#explained")
        page.check("admin-gateway")
        p.click("nav.tabs >> text=System")
        self.assertIn("current", p.inner_text("#signing-keys"))
        page.check("admin-system")
        page.close()

    def test_a_moderator_sees_only_users_and_the_audit_log(self):
        page = BROWSER.page()
        p = page.p
        sign_in(page, MODERATOR)
        tabs = p.eval_on_selector_all("nav.tabs a", "links => links.map(a => a.textContent.trim())")
        self.assertEqual(tabs, ["Dashboard", "Users", "API keys", "Audit log", "My account"])
        page.check("admin-moderator-dashboard")
        p.click("nav.tabs >> text=Users")
        p.fill("#q", "grace")
        p.click("#results a:has-text('grace.hopper@example.com')")
        page.wait_for_url("**/ui/admin/users/*")
        self.assertEqual(p.locator("main form[method=post]").count(), 0, "no action for a moderator")
        page.check("admin-moderator-user")
        res = p.goto(SERVER.base + "/ui/admin/ip-rules")
        self.assertEqual(res.status, 403)
        page.problems.clear()  # the 403 itself is logged by Chromium as a failed resource
        page.close()


if __name__ == "__main__":
    unittest.main()
