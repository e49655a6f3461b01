"""API conformance from outside, against this build's real `rampart` binary (SQLite, a temporary
directory, an SMTP sink), with two well-kept tools from PyPI pinned in requirements.txt:

1. a client generated from docs/openapi.json by openapi-python-client, used for register,
   login, /v1/me, an API key round trip (create, verify, list, revoke) and an administrator's
   paged user list: the document must describe the service well enough for a generator;
2. schemathesis, fuzzing every operation of the served /openapi.json anonymously and as an
   administrator, with the checks for server errors, status codes, content types and
   response schemas. Any failure fails the run.

Environment (set by the Rust test `it::conformance`): RAMPART_BIN, OPENAPI (the committed
document), WORK (a scratch directory), and optionally SCHEMATHESIS_MAX_EXAMPLES.
"""

import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "browser"))

from harness import ADMIN_EMAIL, PASSWORD, Rampart  # noqa: E402

WORK = os.environ["WORK"]
OPENAPI = os.environ["OPENAPI"]
BIN = os.path.dirname(sys.executable)

# Every limit out of the fuzzer's way: thousands of requests from one address in a few minutes
# would otherwise be mostly 429s (documented, so not failures, but nothing tested).
FUZZ_ENV = {
    "RAMPART_RATE_LIMIT__ENABLED": "false",
    "RAMPART_LOGIN__MAX_FAILURES": "1000000",
    "RAMPART_LOGIN__IP_MAX_FAILURES": "1000000",
    "RAMPART_ACCOUNTS__VERIFY_EMAIL": "false",
    # Failed sign-ins by the thousand would block the fuzzer's address (403 ip_blocked).
    "RAMPART_IP_RULES__AUTO_BLOCK_FAILURES": "0",
}

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def schemathesis(base, name, *extra):
    """One schemathesis run; returns (exit code, its output)."""
    examples = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "12")
    args = [
        os.path.join(BIN, "schemathesis"), "run", f"{base}/openapi.json",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", examples,
        "--seed", "20261207",
        "--workers", "2",
        "--request-timeout", "20",
        "--continue-on-failure",
        "--no-shrink",
        "--suppress-health-check", "all",
        "--report", "junit",
        "--report-junit-path", os.path.join(WORK, f"schemathesis-{name}.xml"),
        "--output-truncate", "false",
        # Browsers' endpoint: its media type (application/csp-report) has no serializer in
        # schemathesis; the CSP tests in it::shield cover it.
        "--exclude-path", "/v1/csp-report",
        *extra,
    ]
    started = time.time()
    # In the scratch directory: schemathesis keeps a cache (.schemathesis/) where it runs.
    out = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=WORK)
    text = out.stdout + out.stderr
    print(f"schemathesis ({name}): exit {out.returncode} in {time.time() - started:.0f} s", flush=True)
    return out.returncode, text


class Fuzzing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Rampart(extra_env=FUZZ_ENV)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_anonymous(self):
        code, text = schemathesis(self.server.base, "anonymous")
        self.assertEqual(code, 0, text[-20000:])
        self.assertIn("passed", text)

    def test_as_administrator(self):
        s = self.server
        status, login = s.api("POST", "/v1/auth/login", {"email": ADMIN_EMAIL, "password": PASSWORD})
        self.assertEqual(status, 200, login)
        status, key = s.api(
            "POST", "/v1/me/api-keys", {"name": "fuzzer", "scopes": ["*"]},
            {"authorization": f"Bearer {login['access_token']}"},
        )
        self.assertEqual(status, 201, key)
        # The access token reaches /v1/me/*, the key every administrative route. The calls that
        # would end the fuzzer's own session or account run in the anonymous pass only.
        code, text = schemathesis(
            s.base, "admin",
            "-H", f"Authorization: Bearer {login['access_token']}",
            "-H", f"X-API-Key: {key['key']}",
            "--exclude-path", "/v1/auth/logout",
            "--exclude-path", "/v1/me/sessions",
            "--exclude-path", "/v1/me/sessions/{id}",
            "--exclude-path", "/v1/me/password",
            "--exclude-path", "/v1/me",
            "--exclude-path", "/v1/me/api-keys",
            "--exclude-path-regex", "^/v1/admin/users/\\{id\\}(/sessions)?$",
        )
        self.assertEqual(code, 0, text[-20000:])


class GeneratedClient(unittest.TestCase):
    """openapi-python-client's output, imported and used as a client author would."""

    @classmethod
    def setUpClass(cls):
        out = os.path.join(WORK, "generated")
        config = os.path.join(WORK, "generator.yml")
        with open(config, "w") as f:
            f.write("package_name_override: rampart_generated\nproject_name_override: rampart-generated\npost_hooks: []\n")
        made = subprocess.run(
            [os.path.join(BIN, "openapi-python-client"), "generate", "--path", OPENAPI,
             "--output-path", out, "--overwrite", "--config", config, "--meta", "none"],
            capture_output=True, text=True, timeout=300,
        )
        assert made.returncode == 0, made.stdout + made.stderr
        # The generator warns about what it could not model: nothing may be left out but the
        # browsers' CSP report endpoint (its media type is application/csp-report) and the
        # bodies of the two streamed downloads (JSON Lines or CSV files, read raw).
        expected = {
            "WARNING parsing POST /v1/csp-report within service. Endpoint will not be generated.",
            "WARNING parsing GET /v1/admin/exports/{id}/download within admin.",
            "WARNING parsing GET /v1/admin/audit/export within audit.",
        }
        warned = {line for line in (made.stdout + made.stderr).splitlines() if line.startswith("WARNING")}
        assert warned <= expected, "\n".join(sorted(warned - expected)) + "\n" + made.stdout + made.stderr
        sys.path.insert(0, WORK)
        os.rename(out, os.path.join(WORK, "rampart_generated")) if not os.path.exists(
            os.path.join(WORK, "rampart_generated")
        ) else None
        cls.server = Rampart(extra_env={"RAMPART_ACCOUNTS__VERIFY_EMAIL": "false"})

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_register_login_me_keys_and_paged_admin_list(self):
        from rampart_generated import AuthenticatedClient, Client
        from rampart_generated.api.accounts import login, register
        from rampart_generated.api.admin import list_users
        from rampart_generated.api.api_keys import create_api_key, list_api_keys, revoke_api_key, verify_api_key
        from rampart_generated.api.me import get_me
        from rampart_generated.models import (
            CreateApiKeyRequest,
            CreatedApiKey,
            LoginRequest,
            RegisterRequest,
            TokenResponse,
            VerifyKeyRequest,
        )

        base = self.server.base
        anonymous = Client(base_url=base, raise_on_unexpected_status=True)

        # Register (e-mail verification off here: 201 with the user).
        res = register.sync_detailed(
            client=anonymous,
            body=RegisterRequest(email="reader@example.com", password="a generated client's password", name="Gen"),
        )
        self.assertEqual(res.status_code, 201, res.content)
        self.assertEqual(res.parsed.user.email, "reader@example.com")

        tokens = login.sync(client=anonymous, body=LoginRequest(email="reader@example.com", password="a generated client's password"))
        self.assertIsInstance(tokens, TokenResponse, tokens)
        me_client = AuthenticatedClient(base_url=base, token=tokens.access_token, raise_on_unexpected_status=True)
        me = get_me.sync(client=me_client)
        self.assertEqual(me.user.email, "reader@example.com")

        # An API key round trip: created by the user, verified by a backend holding keys:verify.
        created = create_api_key.sync(client=me_client, body=CreateApiKeyRequest(name="gen", scopes=[]))
        self.assertIsInstance(created, CreatedApiKey, created)
        self.assertTrue(created.key.startswith("rk_"))
        listed = list_api_keys.sync(client=me_client)
        self.assertEqual([k.id for k in listed.items], [created.id])
        self.assertIsNone(listed.next_cursor)
        backend = AuthenticatedClient(
            base_url=base, token=self.server.verifier_key, raise_on_unexpected_status=True,
        )
        verdict = verify_api_key.sync(client=backend, body=VerifyKeyRequest(key=created.key))
        self.assertTrue(verdict.valid)
        self.assertEqual(verdict.key_id, created.id)
        self.assertIsNone(verdict.expires_at)
        self.assertEqual(revoke_api_key.sync_detailed(client=me_client, id=created.id).status_code, 204)
        verdict = verify_api_key.sync(client=backend, body=VerifyKeyRequest(key=created.key))
        self.assertFalse(verdict.valid)
        self.assertEqual(verdict.code, "revoked")

        # An administrator pages through the users one at a time.
        admin_tokens = login.sync(client=anonymous, body=LoginRequest(email=ADMIN_EMAIL, password=PASSWORD))
        self.assertIsInstance(admin_tokens, TokenResponse, admin_tokens)
        admin = AuthenticatedClient(base_url=base, token=admin_tokens.access_token, raise_on_unexpected_status=True)
        seen, cursor = [], None
        while True:
            page = list_users.sync(client=admin, limit=1, cursor=cursor)
            seen += [u.email for u in page.items]
            cursor = page.next_cursor
            if not cursor:
                break
        self.assertEqual(sorted(seen), sorted([ADMIN_EMAIL, "reader@example.com"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
