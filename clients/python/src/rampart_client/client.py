"""The JSON API client, async (``AsyncRampartClient``); ``RampartClient`` in ``sync_client.py``
is generated from this file by ``scripts/unasync.py`` (a test keeps the two in step).

One method per route of ``docs/openapi.json`` (``OPERATIONS`` maps each method to its route;
the gateway's ``/authz/*`` doors are for proxies and left out, and so is ``/v1/transit/*``, which
is Vault's transit API in shape: use ``hvac``). Answers are the decoded JSON
(``None`` for 204); a problem document is raised as a :class:`~rampart_client.errors.ProblemError`
subclass carrying its ``code``.
"""

from __future__ import annotations

from typing import Any

from ._client_base import AsyncBase, JsonObject, body, query

OPERATIONS: dict[str, tuple[str, str]] = {
    "healthz": ("GET", "/healthz"),
    "readyz": ("GET", "/readyz"),
    "metrics": ("GET", "/metrics"),
    "openapi": ("GET", "/openapi.json"),
    "jwks": ("GET", "/.well-known/jwks.json"),
    "register": ("POST", "/v1/auth/register"),
    "login": ("POST", "/v1/auth/login"),
    "login_mfa": ("POST", "/v1/auth/login/mfa"),
    "login_mfa_email": ("POST", "/v1/auth/login/mfa/email"),
    "login_webauthn_start": ("POST", "/v1/auth/login/webauthn/start"),
    "login_webauthn_finish": ("POST", "/v1/auth/login/webauthn/finish"),
    "passkey_start": ("POST", "/v1/auth/passkey/start"),
    "passkey_finish": ("POST", "/v1/auth/passkey/finish"),
    "telegram_login": ("POST", "/v1/auth/telegram"),
    "oauth_start": ("GET", "/v1/auth/oauth/{provider}/start"),
    "oauth_callback": ("GET", "/v1/auth/oauth/{provider}/callback"),
    "oauth_callback_post": ("POST", "/v1/auth/oauth/{provider}/callback"),
    "refresh": ("POST", "/v1/auth/refresh"),
    "logout": ("POST", "/v1/auth/logout"),
    "csrf": ("GET", "/v1/auth/csrf"),
    "forgot_password": ("POST", "/v1/auth/password/forgot"),
    "reset_password": ("POST", "/v1/auth/password/reset"),
    "verify_email": ("POST", "/v1/auth/verify-email"),
    "introspect": ("POST", "/v1/auth/introspect"),
    "me": ("GET", "/v1/me"),
    "change_password": ("POST", "/v1/me/password"),
    "list_sessions": ("GET", "/v1/me/sessions"),
    "revoke_session": ("DELETE", "/v1/me/sessions/{id}"),
    "revoke_all_sessions": ("DELETE", "/v1/me/sessions"),
    "totp_setup": ("POST", "/v1/me/mfa/totp/setup"),
    "totp_enable": ("POST", "/v1/me/mfa/totp/enable"),
    "totp_disable": ("POST", "/v1/me/mfa/totp/disable"),
    "regenerate_backup_codes": ("POST", "/v1/me/mfa/backup-codes"),
    "webauthn_register_start": ("POST", "/v1/me/mfa/webauthn/register/start"),
    "webauthn_register_finish": ("POST", "/v1/me/mfa/webauthn/register/finish"),
    "list_webauthn": ("GET", "/v1/me/mfa/webauthn"),
    "remove_webauthn": ("DELETE", "/v1/me/mfa/webauthn/{id}"),
    "remove_webauthn_with_reauth": ("POST", "/v1/me/mfa/webauthn/{id}/remove"),
    "link_telegram": ("POST", "/v1/me/identities/telegram"),
    "list_identities": ("GET", "/v1/me/identities"),
    "unlink_identity": ("DELETE", "/v1/me/identities/{id}"),
    "create_api_key": ("POST", "/v1/me/api-keys"),
    "list_api_keys": ("GET", "/v1/me/api-keys"),
    "revoke_api_key": ("DELETE", "/v1/me/api-keys/{id}"),
    "revoke_all_api_keys": ("DELETE", "/v1/me/api-keys"),
    "rotate_api_key": ("POST", "/v1/me/api-keys/{id}/rotate"),
    "api_key_usage": ("GET", "/v1/me/api-keys/{id}/usage"),
    "verify_api_key": ("POST", "/v1/keys/verify"),
    "authz_check": ("POST", "/v1/authz/check"),
    "csp_report": ("POST", "/v1/csp-report"),
    "list_users": ("GET", "/v1/admin/users"),
    "get_user": ("GET", "/v1/admin/users/{id}"),
    "update_user": ("PATCH", "/v1/admin/users/{id}"),
    "delete_user": ("DELETE", "/v1/admin/users/{id}"),
    "restore_user": ("POST", "/v1/admin/users/{id}/restore"),
    "unlock_user": ("POST", "/v1/admin/users/{id}/unlock"),
    "revoke_user_sessions": ("DELETE", "/v1/admin/users/{id}/sessions"),
    "list_roles": ("GET", "/v1/admin/roles"),
    "create_role": ("POST", "/v1/admin/roles"),
    "put_role": ("PUT", "/v1/admin/roles/{name}"),
    "delete_role": ("DELETE", "/v1/admin/roles/{name}"),
    "list_ip_rules": ("GET", "/v1/admin/ip-rules"),
    "create_ip_rule": ("POST", "/v1/admin/ip-rules"),
    "delete_ip_rule": ("DELETE", "/v1/admin/ip-rules/{id}"),
    "audit_events": ("GET", "/v1/admin/audit"),
    "audit_stats": ("GET", "/v1/admin/audit/stats"),
    "audit_export": ("GET", "/v1/admin/audit/export"),
    "audit_verify": ("GET", "/v1/admin/audit/verify"),
    "gateway_explain": ("POST", "/v1/admin/gateway/explain"),
    "gateway_rules": ("GET", "/v1/admin/gateway/rules"),
    "list_webhooks": ("GET", "/v1/admin/webhooks"),
    "create_webhook": ("POST", "/v1/admin/webhooks"),
    "get_webhook": ("GET", "/v1/admin/webhooks/{id}"),
    "update_webhook": ("PATCH", "/v1/admin/webhooks/{id}"),
    "delete_webhook": ("DELETE", "/v1/admin/webhooks/{id}"),
    "rotate_webhook_secret": ("POST", "/v1/admin/webhooks/{id}/rotate-secret"),
    "test_webhook": ("POST", "/v1/admin/webhooks/{id}/test"),
    "webhook_deliveries": ("GET", "/v1/admin/webhooks/{id}/deliveries"),
    "redeliver_webhook": ("POST", "/v1/admin/webhooks/deliveries/{id}/redeliver"),
    "notification_preferences": ("GET", "/v1/me/notifications"),
    "set_notification_preferences": ("PUT", "/v1/me/notifications"),
    "list_alerts": ("GET", "/v1/admin/alerts"),
    "create_alert": ("POST", "/v1/admin/alerts"),
    "put_alert": ("PUT", "/v1/admin/alerts/{id}"),
    "delete_alert": ("DELETE", "/v1/admin/alerts/{id}"),
    "export_me": ("GET", "/v1/me/export"),
    "delete_me": ("DELETE", "/v1/me"),
    "export_user": ("GET", "/v1/admin/users/{id}/export"),
    "create_export": ("POST", "/v1/admin/exports"),
    "list_exports": ("GET", "/v1/admin/exports"),
    "get_export": ("GET", "/v1/admin/exports/{id}"),
    "approve_export": ("POST", "/v1/admin/exports/{id}/approve"),
    "download_export": ("GET", "/v1/admin/exports/{id}/download"),
}


def _seg(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


class AsyncRampartClient(AsyncBase):
    """``AsyncRampartClient("http://127.0.0.1:8080", token=...)`` (a user session) or
    ``api_key=...``; ``with_token`` / ``with_api_key`` give clients sharing the pool."""

    # --- service -----------------------------------------------------------------------------
    async def healthz(self) -> JsonObject:
        return await self._json("GET", "/healthz")

    async def readyz(self) -> JsonObject:
        return await self._json("GET", "/readyz")

    async def metrics(self) -> str:
        return await self._text("GET", "/metrics")

    async def openapi(self) -> JsonObject:
        return await self._json("GET", "/openapi.json")

    async def jwks(self) -> JsonObject:
        return await self._json("GET", "/.well-known/jwks.json")

    # --- accounts and sessions ---------------------------------------------------------------
    async def register(self, email: str, password: str, name: str | None = None) -> JsonObject:
        return await self._json(
            "POST", "/v1/auth/register", json=body(email=email, password=password, name=name)
        )

    async def login(self, email: str, password: str, *, cookie: bool = False) -> JsonObject:
        """The TokenResponse, or ``{"mfa_required": true, "mfa_token", "methods"}``."""
        return await self._json(
            "POST",
            "/v1/auth/login",
            json=body(email=email, password=password),
            params=query(session="cookie") if cookie else None,
        )

    async def login_mfa(
        self,
        mfa_token: str,
        *,
        code: str | None = None,
        backup_code: str | None = None,
        method: str | None = None,
    ) -> JsonObject:
        return await self._json(
            "POST",
            "/v1/auth/login/mfa",
            json=body(mfa_token=mfa_token, code=code, backup_code=backup_code, method=method),
        )

    async def login_mfa_email(self, mfa_token: str) -> Any:
        return await self._call("POST", "/v1/auth/login/mfa/email", json=body(mfa_token=mfa_token))

    async def login_webauthn_start(self, mfa_token: str) -> JsonObject:
        return await self._json("POST", "/v1/auth/login/webauthn/start", json=body(mfa_token=mfa_token))

    async def login_webauthn_finish(
        self, mfa_token: str, challenge_id: str, credential: JsonObject
    ) -> JsonObject:
        return await self._json(
            "POST",
            "/v1/auth/login/webauthn/finish",
            json=body(mfa_token=mfa_token, challenge_id=challenge_id, credential=credential),
        )

    async def passkey_start(self) -> JsonObject:
        return await self._json("POST", "/v1/auth/passkey/start")

    async def passkey_finish(
        self, challenge_id: str, credential: JsonObject, *, cookie: bool = False
    ) -> JsonObject:
        return await self._json(
            "POST",
            "/v1/auth/passkey/finish",
            json=body(challenge_id=challenge_id, credential=credential),
            params=query(session="cookie") if cookie else None,
        )

    async def telegram_login(self, widget: JsonObject, *, cookie: bool = False) -> JsonObject:
        """Signs in with the Telegram Login Widget's fields as the widget gave them (``id``,
        ``auth_date``, ``hash``, and ``first_name``/``last_name``/``username``/``photo_url`` when
        present). The TokenResponse, or ``{"mfa_required": true, ...}`` as ``login`` answers."""
        return await self._json(
            "POST", "/v1/auth/telegram", json=dict(widget), params=query(session="cookie") if cookie else None
        )

    async def oauth_start(
        self, provider: str, *, rd: str | None = None, mode: str | None = None
    ) -> JsonObject:
        """Starts a sign-in with a configured provider (``mode="link"``: link it to the signed-in
        account). ``{"location": <the provider's authorization URL>, "cookies": [flow cookie]}``:
        the browser goes there, and brings the flow cookie back to the callback."""
        answer = await self._call(
            "GET",
            f"/v1/auth/oauth/{_seg(provider)}/start",
            params=query(rd=rd, mode=mode),
            redirect=True,
        )
        return dict(answer)

    async def oauth_callback(self, provider: str, params: JsonObject, flow_cookie: str) -> JsonObject:
        """Finishes the flow with the provider's redirect parameters (``code``, ``state``) and
        the flow cookie (``name=value``): tokens, ``mfa_required``, or the linked identity."""
        return await self._json(
            "GET",
            f"/v1/auth/oauth/{_seg(provider)}/callback",
            params={k: str(v) for k, v in params.items()},
            extra_headers={"accept": "application/json", "cookie": flow_cookie},
        )

    async def oauth_callback_post(self, provider: str, form: JsonObject, flow_cookie: str) -> JsonObject:
        """As ``oauth_callback``, for a provider answering with a form post (Apple)."""
        return await self._json(
            "POST",
            f"/v1/auth/oauth/{_seg(provider)}/callback",
            data={k: str(v) for k, v in form.items()},
            extra_headers={"accept": "application/json", "cookie": flow_cookie},
        )

    async def refresh(self, refresh_token: str) -> JsonObject:
        return await self._json("POST", "/v1/auth/refresh", json=body(refresh_token=refresh_token))

    async def logout(self) -> None:
        await self._call("POST", "/v1/auth/logout")

    async def csrf(self) -> JsonObject:
        return await self._json("GET", "/v1/auth/csrf")

    async def forgot_password(self, email: str) -> Any:
        return await self._call("POST", "/v1/auth/password/forgot", json=body(email=email))

    async def reset_password(self, token: str, new_password: str) -> None:
        await self._call("POST", "/v1/auth/password/reset", json=body(token=token, new_password=new_password))

    async def verify_email(self, token: str) -> None:
        await self._call("POST", "/v1/auth/verify-email", json=body(token=token))

    async def introspect(self, token: str) -> JsonObject:
        """RFC 7662 (the caller holds ``tokens:introspect``)."""
        return await self._json("POST", "/v1/auth/introspect", data={"token": token})

    # --- the caller --------------------------------------------------------------------------
    async def me(self) -> JsonObject:
        return await self._json("GET", "/v1/me")

    async def change_password(
        self, current_password: str, new_password: str, *, keep_other_sessions: bool | None = None
    ) -> None:
        await self._call(
            "POST",
            "/v1/me/password",
            json=body(
                current_password=current_password,
                new_password=new_password,
                keep_other_sessions=keep_other_sessions,
            ),
        )

    async def list_sessions(self) -> JsonObject:
        return await self._json("GET", "/v1/me/sessions")

    async def revoke_session(self, session_id: str) -> None:
        await self._call("DELETE", f"/v1/me/sessions/{_seg(session_id)}")

    async def revoke_all_sessions(self, *, keep_current: bool = False) -> None:
        await self._call("DELETE", "/v1/me/sessions", params=query(keep_current=keep_current))

    # --- second factors ----------------------------------------------------------------------
    async def totp_setup(self, password: str) -> JsonObject:
        return await self._json("POST", "/v1/me/mfa/totp/setup", json=body(password=password))

    async def totp_enable(self, code: str) -> JsonObject:
        return await self._json("POST", "/v1/me/mfa/totp/enable", json=body(code=code))

    async def totp_disable(self, password: str, code: str | None = None) -> None:
        await self._call("POST", "/v1/me/mfa/totp/disable", json=body(password=password, code=code))

    async def regenerate_backup_codes(self, password: str, code: str | None = None) -> JsonObject:
        return await self._json("POST", "/v1/me/mfa/backup-codes", json=body(password=password, code=code))

    async def webauthn_register_start(self, password: str, code: str | None = None) -> JsonObject:
        return await self._json(
            "POST", "/v1/me/mfa/webauthn/register/start", json=body(password=password, code=code)
        )

    async def webauthn_register_finish(
        self, challenge_id: str, credential: JsonObject, name: str
    ) -> JsonObject:
        return await self._json(
            "POST",
            "/v1/me/mfa/webauthn/register/finish",
            json=body(challenge_id=challenge_id, credential=credential, name=name),
        )

    async def list_webauthn(self) -> JsonObject:
        return await self._json("GET", "/v1/me/mfa/webauthn")

    async def remove_webauthn(
        self, credential_id: str, password: str | None = None, code: str | None = None
    ) -> None:
        """Without ``password``: the session must be a two-factor sign-in within the
        re-authentication window (else ``reauthentication_required``). With it: re-authenticates
        through ``remove_webauthn_with_reauth`` (a DELETE with a body is deprecated)."""
        if password is not None:
            await self.remove_webauthn_with_reauth(credential_id, password, code)
            return
        await self._call("DELETE", f"/v1/me/mfa/webauthn/{_seg(credential_id)}")

    async def remove_webauthn_with_reauth(
        self, credential_id: str, password: str, code: str | None = None
    ) -> None:
        """Removes a passkey after re-authenticating with the password and a current code."""
        await self._call(
            "POST",
            f"/v1/me/mfa/webauthn/{_seg(credential_id)}/remove",
            json=body(password=password, code=code),
        )

    # --- linked identities ---------------------------------------------------------------------
    async def link_telegram(self, widget: JsonObject) -> JsonObject:
        """Links the Telegram account of a Login Widget payload to the signed-in account."""
        return await self._json("POST", "/v1/me/identities/telegram", json=dict(widget))

    async def list_identities(self) -> JsonObject:
        return await self._json("GET", "/v1/me/identities")

    async def unlink_identity(self, identity_id: str) -> None:
        await self._call("DELETE", f"/v1/me/identities/{_seg(identity_id)}")

    # --- API keys ----------------------------------------------------------------------------
    async def create_api_key(
        self,
        name: str,
        scopes: list[str],
        *,
        expires_in_days: int | None = None,
        rate_limit: dict[str, int] | None = None,
        password: str | None = None,
    ) -> JsonObject:
        """The new key (its secret ``key`` is shown this once)."""
        return await self._json(
            "POST",
            "/v1/me/api-keys",
            json=body(
                name=name,
                scopes=scopes,
                expires_in_days=expires_in_days,
                rate_limit=rate_limit,
                password=password,
            ),
        )

    async def list_api_keys(self) -> JsonObject:
        return await self._json("GET", "/v1/me/api-keys")

    async def revoke_api_key(self, key_id: str) -> None:
        await self._call("DELETE", f"/v1/me/api-keys/{_seg(key_id)}")

    async def revoke_all_api_keys(self) -> None:
        await self._call("DELETE", "/v1/me/api-keys")

    async def rotate_api_key(
        self, key_id: str, *, grace_seconds: int | None = None, password: str | None = None
    ) -> JsonObject:
        return await self._json(
            "POST",
            f"/v1/me/api-keys/{_seg(key_id)}/rotate",
            json=body(grace_seconds=grace_seconds, password=password),
        )

    async def api_key_usage(
        self, key_id: str, *, since: str | None = None, until: str | None = None
    ) -> JsonObject:
        return await self._json(
            "GET", f"/v1/me/api-keys/{_seg(key_id)}/usage", params=query(since=since, until=until)
        )

    async def verify_api_key(self, key: str, scope: str | None = None) -> JsonObject:
        """``{valid: true, …}`` or ``{valid: false, code}`` (the caller holds ``keys:verify``)."""
        return await self._json("POST", "/v1/keys/verify", json=body(key=key, scope=scope))

    async def authz_check(self, permission: str, subject_id: str | None = None) -> bool:
        answer = await self._call(
            "POST", "/v1/authz/check", json=body(permission=permission, subject_id=subject_id)
        )
        return bool(answer["allowed"])

    async def csp_report(self, report: JsonObject) -> None:
        await self._call("POST", "/v1/csp-report", json=report, content_type="application/csp-report")

    # --- administration ----------------------------------------------------------------------
    async def list_users(
        self, *, q: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> JsonObject:
        return await self._json("GET", "/v1/admin/users", params=query(q=q, limit=limit, cursor=cursor))

    async def get_user(self, user_id: str) -> JsonObject:
        return await self._json("GET", f"/v1/admin/users/{_seg(user_id)}")

    async def update_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        roles: list[str] | None = None,
        disabled: bool | None = None,
    ) -> JsonObject:
        return await self._json(
            "PATCH", f"/v1/admin/users/{_seg(user_id)}", json=body(name=name, roles=roles, disabled=disabled)
        )

    async def delete_user(self, user_id: str, *, immediately: bool = False) -> JsonObject | None:
        """Erases a user: by default scheduled after the grace (``{status, erase_after}``);
        ``immediately=True`` erases now (``None``)."""
        params = query(immediately="true") if immediately else None
        answer = await self._call("DELETE", f"/v1/admin/users/{_seg(user_id)}", params=params)
        return answer if isinstance(answer, dict) else None

    async def restore_user(self, user_id: str) -> None:
        """Takes back a scheduled erasure within its grace."""
        await self._call("POST", f"/v1/admin/users/{_seg(user_id)}/restore")

    async def unlock_user(self, user_id: str) -> None:
        await self._call("POST", f"/v1/admin/users/{_seg(user_id)}/unlock")

    async def revoke_user_sessions(self, user_id: str) -> None:
        await self._call("DELETE", f"/v1/admin/users/{_seg(user_id)}/sessions")

    async def list_roles(self) -> JsonObject:
        return await self._json("GET", "/v1/admin/roles")

    async def create_role(
        self, name: str, permissions: list[str], description: str | None = None
    ) -> JsonObject:
        return await self._json(
            "POST", "/v1/admin/roles", json=body(name=name, permissions=permissions, description=description)
        )

    async def put_role(self, name: str, permissions: list[str], description: str | None = None) -> JsonObject:
        return await self._json(
            "PUT",
            f"/v1/admin/roles/{_seg(name)}",
            json=body(permissions=permissions, description=description),
        )

    async def delete_role(self, name: str) -> None:
        await self._call("DELETE", f"/v1/admin/roles/{_seg(name)}")

    async def list_ip_rules(self) -> JsonObject:
        return await self._json("GET", "/v1/admin/ip-rules")

    async def create_ip_rule(
        self,
        network: str,
        action: str,
        *,
        scope: str | None = None,
        reason: str | None = None,
        expires_at: str | None = None,
    ) -> JsonObject:
        return await self._json(
            "POST",
            "/v1/admin/ip-rules",
            json=body(network=network, action=action, scope=scope, reason=reason, expires_at=expires_at),
        )

    async def delete_ip_rule(self, rule_id: str) -> None:
        await self._call("DELETE", f"/v1/admin/ip-rules/{_seg(rule_id)}")

    async def audit_events(self, **filters: str | int | None) -> JsonObject:
        """Filters: ``actor_id, action, resource_type, resource_id, outcome, severity, ip, since,
        until, cursor, limit``."""
        return await self._json("GET", "/v1/admin/audit", params=query(**filters))

    async def audit_stats(self, **filters: str | int | None) -> JsonObject:
        return await self._json("GET", "/v1/admin/audit/stats", params=query(**filters))

    async def audit_export(self, *, format: str = "jsonl", **filters: str | int | None) -> str:
        return await self._text("GET", "/v1/admin/audit/export", params=query(format=format, **filters))

    async def audit_verify(self) -> JsonObject:
        return await self._json("GET", "/v1/admin/audit/verify")

    async def gateway_explain(
        self, method: str, url: str, headers: dict[str, str] | None = None
    ) -> JsonObject:
        return await self._json(
            "POST", "/v1/admin/gateway/explain", json=body(method=method, url=url, headers=headers)
        )

    async def gateway_rules(self) -> JsonObject:
        return await self._json("GET", "/v1/admin/gateway/rules")

    # --- webhooks ----------------------------------------------------------------------------
    async def list_webhooks(self) -> JsonObject:
        return await self._json("GET", "/v1/admin/webhooks")

    async def create_webhook(
        self,
        url: str,
        events: list[str],
        *,
        description: str | None = None,
        enabled: bool | None = None,
        format: str | None = None,
    ) -> JsonObject:
        """The endpoint and its ``whsec_…`` signing secret (shown in this answer only).
        ``format``: ``"standard"`` (default) or ``"slack"``."""
        return await self._json(
            "POST",
            "/v1/admin/webhooks",
            json=body(url=url, events=events, description=description, enabled=enabled, format=format),
        )

    async def get_webhook(self, webhook_id: str) -> JsonObject:
        return await self._json("GET", f"/v1/admin/webhooks/{_seg(webhook_id)}")

    async def update_webhook(
        self,
        webhook_id: str,
        *,
        url: str | None = None,
        events: list[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
        format: str | None = None,
    ) -> JsonObject:
        """Changes only the fields given; ``enabled=True`` also ends a failure streak."""
        return await self._json(
            "PATCH",
            f"/v1/admin/webhooks/{_seg(webhook_id)}",
            json=body(url=url, events=events, description=description, enabled=enabled, format=format),
        )

    async def delete_webhook(self, webhook_id: str) -> None:
        await self._call("DELETE", f"/v1/admin/webhooks/{_seg(webhook_id)}")

    async def rotate_webhook_secret(self, webhook_id: str, grace_seconds: int | None = None) -> JsonObject:
        """``{"secret"}``; the old secret keeps signing beside it for ``grace_seconds``."""
        return await self._json(
            "POST",
            f"/v1/admin/webhooks/{_seg(webhook_id)}/rotate-secret",
            json=body(grace_seconds=grace_seconds),
        )

    async def test_webhook(self, webhook_id: str) -> JsonObject:
        return await self._json("POST", f"/v1/admin/webhooks/{_seg(webhook_id)}/test")

    async def webhook_deliveries(
        self,
        webhook_id: str,
        *,
        status: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> JsonObject:
        return await self._json(
            "GET",
            f"/v1/admin/webhooks/{_seg(webhook_id)}/deliveries",
            params=query(status=status, cursor=cursor, limit=limit),
        )

    async def redeliver_webhook(self, attempt_id: str) -> JsonObject:
        return await self._json("POST", f"/v1/admin/webhooks/deliveries/{_seg(attempt_id)}/redeliver")

    # --- notifications and alerts ------------------------------------------------------------
    async def notification_preferences(self) -> JsonObject:
        """``{"new_sign_in", "security_changes", "always_on": [...]}``."""
        return await self._json("GET", "/v1/me/notifications")

    async def set_notification_preferences(
        self, *, new_sign_in: bool | None = None, security_changes: bool | None = None
    ) -> JsonObject:
        """Turns the optional security e-mails on or off; critical ones always go."""
        return await self._json(
            "PUT",
            "/v1/me/notifications",
            json=body(new_sign_in=new_sign_in, security_changes=security_changes),
        )

    async def list_alerts(self) -> JsonObject:
        return await self._json("GET", "/v1/admin/alerts")

    async def create_alert(self, rule: JsonObject) -> JsonObject:
        """``rule``: ``{"name", "match": {"action", "outcome"?, "severity"?}, "threshold": {"count",
        "window_secs"}, "channels": [{"email": ...} | {"webhook": ...}], "cooldown_secs", "enabled"?}``."""
        return await self._json("POST", "/v1/admin/alerts", json=rule)

    async def put_alert(self, rule_id: str, rule: JsonObject) -> JsonObject:
        return await self._json("PUT", f"/v1/admin/alerts/{_seg(rule_id)}", json=rule)

    async def delete_alert(self, rule_id: str) -> None:
        await self._call("DELETE", f"/v1/admin/alerts/{_seg(rule_id)}")

    # --- personal data -----------------------------------------------------------------------
    async def export_me(self) -> JsonObject:
        """Everything held about the caller (``format``: ``rampart.personal-data.v1``)."""
        return await self._json("GET", "/v1/me/export")

    async def delete_me(self, password: str, code: str | None = None) -> JsonObject:
        """Asks for the caller's erasure: disabled now, erased after the grace
        (``{status: "scheduled", erase_after}``)."""
        return await self._json("DELETE", "/v1/me", json=body(password=password, code=code))

    async def export_user(self, user_id: str) -> JsonObject:
        """The same document about any user (``users:export``)."""
        return await self._json("GET", f"/v1/admin/users/{_seg(user_id)}/export")

    # --- bulk exports ------------------------------------------------------------------------
    async def create_export(
        self, kind: str, filter: JsonObject | None = None, format: str | None = None
    ) -> JsonObject:
        """Requests a bulk export (``users``: ``users:export_list``; ``audit``: ``audit:export``):
        ``status`` is ``ready``, or ``pending_approval`` over the approval threshold."""
        return await self._json(
            "POST", "/v1/admin/exports", json=body(kind=kind, filter=filter, format=format)
        )

    async def list_exports(self, status: str | None = None) -> JsonObject:
        """The exports, newest first (``exports:read``); ``status="pending_approval"``: what waits."""
        return await self._json("GET", "/v1/admin/exports", params=query(status=status))

    async def get_export(self, export_id: str) -> JsonObject:
        return await self._json("GET", f"/v1/admin/exports/{_seg(export_id)}")

    async def approve_export(self, export_id: str) -> None:
        """A second administrator's approval (``exports:approve``; never the requester)."""
        await self._call("POST", f"/v1/admin/exports/{_seg(export_id)}/approve")

    async def download_export(self, export_id: str) -> str:
        """The export's rows (JSON Lines or CSV), once, by its requester."""
        return await self._text("GET", f"/v1/admin/exports/{_seg(export_id)}/download")
