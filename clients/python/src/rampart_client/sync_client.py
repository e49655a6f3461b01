"""The JSON API client, blocking. GENERATED from client.py by scripts/unasync.py: do not edit."""

from __future__ import annotations

from typing import Any

from ._client_base import JsonObject, SyncBase, body, query
from .client import OPERATIONS, _seg

__all__ = ["OPERATIONS", "RampartClient"]


class RampartClient(SyncBase):
    """``RampartClient("http://127.0.0.1:8080", token=...)`` (a user session) or
    ``api_key=...``; ``with_token`` / ``with_api_key`` give clients sharing the pool."""

    # --- service -----------------------------------------------------------------------------
    def healthz(self) -> JsonObject:
        return self._json("GET", "/healthz")

    def readyz(self) -> JsonObject:
        return self._json("GET", "/readyz")

    def metrics(self) -> str:
        return self._text("GET", "/metrics")

    def openapi(self) -> JsonObject:
        return self._json("GET", "/openapi.json")

    def jwks(self) -> JsonObject:
        return self._json("GET", "/.well-known/jwks.json")

    # --- accounts and sessions ---------------------------------------------------------------
    def register(self, email: str, password: str, name: str | None = None) -> JsonObject:
        return self._json("POST", "/v1/auth/register", json=body(email=email, password=password, name=name))

    def login(self, email: str, password: str, *, cookie: bool = False) -> JsonObject:
        """The TokenResponse, or ``{"mfa_required": true, "mfa_token", "methods"}``."""
        return self._json(
            "POST",
            "/v1/auth/login",
            json=body(email=email, password=password),
            params=query(session="cookie") if cookie else None,
        )

    def login_mfa(
        self,
        mfa_token: str,
        *,
        code: str | None = None,
        backup_code: str | None = None,
        method: str | None = None,
    ) -> JsonObject:
        return self._json(
            "POST",
            "/v1/auth/login/mfa",
            json=body(mfa_token=mfa_token, code=code, backup_code=backup_code, method=method),
        )

    def login_mfa_email(self, mfa_token: str) -> Any:
        return self._call("POST", "/v1/auth/login/mfa/email", json=body(mfa_token=mfa_token))

    def login_webauthn_start(self, mfa_token: str) -> JsonObject:
        return self._json("POST", "/v1/auth/login/webauthn/start", json=body(mfa_token=mfa_token))

    def login_webauthn_finish(self, mfa_token: str, challenge_id: str, credential: JsonObject) -> JsonObject:
        return self._json(
            "POST",
            "/v1/auth/login/webauthn/finish",
            json=body(mfa_token=mfa_token, challenge_id=challenge_id, credential=credential),
        )

    def passkey_start(self) -> JsonObject:
        return self._json("POST", "/v1/auth/passkey/start")

    def passkey_finish(
        self, challenge_id: str, credential: JsonObject, *, cookie: bool = False
    ) -> JsonObject:
        return self._json(
            "POST",
            "/v1/auth/passkey/finish",
            json=body(challenge_id=challenge_id, credential=credential),
            params=query(session="cookie") if cookie else None,
        )

    def telegram_login(self, widget: JsonObject, *, cookie: bool = False) -> JsonObject:
        """Signs in with the Telegram Login Widget's fields as the widget gave them (``id``,
        ``auth_date``, ``hash``, and ``first_name``/``last_name``/``username``/``photo_url`` when
        present). The TokenResponse, or ``{"mfa_required": true, ...}`` as ``login`` answers."""
        return self._json(
            "POST", "/v1/auth/telegram", json=dict(widget), params=query(session="cookie") if cookie else None
        )

    def oauth_start(self, provider: str, *, rd: str | None = None, mode: str | None = None) -> JsonObject:
        """Starts a sign-in with a configured provider (``mode="link"``: link it to the signed-in
        account). ``{"location": <the provider's authorization URL>, "cookies": [flow cookie]}``:
        the browser goes there, and brings the flow cookie back to the callback."""
        answer = self._call(
            "GET",
            f"/v1/auth/oauth/{_seg(provider)}/start",
            params=query(rd=rd, mode=mode),
            redirect=True,
        )
        return dict(answer)

    def oauth_callback(self, provider: str, params: JsonObject, flow_cookie: str) -> JsonObject:
        """Finishes the flow with the provider's redirect parameters (``code``, ``state``) and
        the flow cookie (``name=value``): tokens, ``mfa_required``, or the linked identity."""
        return self._json(
            "GET",
            f"/v1/auth/oauth/{_seg(provider)}/callback",
            params={k: str(v) for k, v in params.items()},
            extra_headers={"accept": "application/json", "cookie": flow_cookie},
        )

    def oauth_callback_post(self, provider: str, form: JsonObject, flow_cookie: str) -> JsonObject:
        """As ``oauth_callback``, for a provider answering with a form post (Apple)."""
        return self._json(
            "POST",
            f"/v1/auth/oauth/{_seg(provider)}/callback",
            data={k: str(v) for k, v in form.items()},
            extra_headers={"accept": "application/json", "cookie": flow_cookie},
        )

    def refresh(self, refresh_token: str) -> JsonObject:
        return self._json("POST", "/v1/auth/refresh", json=body(refresh_token=refresh_token))

    def logout(self) -> None:
        self._call("POST", "/v1/auth/logout")

    def csrf(self) -> JsonObject:
        return self._json("GET", "/v1/auth/csrf")

    def forgot_password(self, email: str) -> Any:
        return self._call("POST", "/v1/auth/password/forgot", json=body(email=email))

    def reset_password(self, token: str, new_password: str) -> None:
        self._call("POST", "/v1/auth/password/reset", json=body(token=token, new_password=new_password))

    def verify_email(self, token: str) -> None:
        self._call("POST", "/v1/auth/verify-email", json=body(token=token))

    def introspect(self, token: str) -> JsonObject:
        """RFC 7662 (the caller holds ``tokens:introspect``)."""
        return self._json("POST", "/v1/auth/introspect", data={"token": token})

    # --- the caller --------------------------------------------------------------------------
    def me(self) -> JsonObject:
        return self._json("GET", "/v1/me")

    def change_password(
        self, current_password: str, new_password: str, *, keep_other_sessions: bool | None = None
    ) -> None:
        self._call(
            "POST",
            "/v1/me/password",
            json=body(
                current_password=current_password,
                new_password=new_password,
                keep_other_sessions=keep_other_sessions,
            ),
        )

    def list_sessions(self) -> JsonObject:
        return self._json("GET", "/v1/me/sessions")

    def revoke_session(self, session_id: str) -> None:
        self._call("DELETE", f"/v1/me/sessions/{_seg(session_id)}")

    def revoke_all_sessions(self, *, keep_current: bool = False) -> None:
        self._call("DELETE", "/v1/me/sessions", params=query(keep_current=keep_current))

    # --- second factors ----------------------------------------------------------------------
    def totp_setup(self, password: str) -> JsonObject:
        return self._json("POST", "/v1/me/mfa/totp/setup", json=body(password=password))

    def totp_enable(self, code: str) -> JsonObject:
        return self._json("POST", "/v1/me/mfa/totp/enable", json=body(code=code))

    def totp_disable(self, password: str, code: str | None = None) -> None:
        self._call("POST", "/v1/me/mfa/totp/disable", json=body(password=password, code=code))

    def regenerate_backup_codes(self, password: str, code: str | None = None) -> JsonObject:
        return self._json("POST", "/v1/me/mfa/backup-codes", json=body(password=password, code=code))

    def webauthn_register_start(self, password: str, code: str | None = None) -> JsonObject:
        return self._json(
            "POST", "/v1/me/mfa/webauthn/register/start", json=body(password=password, code=code)
        )

    def webauthn_register_finish(self, challenge_id: str, credential: JsonObject, name: str) -> JsonObject:
        return self._json(
            "POST",
            "/v1/me/mfa/webauthn/register/finish",
            json=body(challenge_id=challenge_id, credential=credential, name=name),
        )

    def list_webauthn(self) -> JsonObject:
        return self._json("GET", "/v1/me/mfa/webauthn")

    def remove_webauthn(
        self, credential_id: str, password: str | None = None, code: str | None = None
    ) -> None:
        """Without ``password``: the session must be a two-factor sign-in within the
        re-authentication window (else ``reauthentication_required``). With it: re-authenticates
        through ``remove_webauthn_with_reauth`` (a DELETE with a body is deprecated)."""
        if password is not None:
            self.remove_webauthn_with_reauth(credential_id, password, code)
            return
        self._call("DELETE", f"/v1/me/mfa/webauthn/{_seg(credential_id)}")

    def remove_webauthn_with_reauth(self, credential_id: str, password: str, code: str | None = None) -> None:
        """Removes a passkey after re-authenticating with the password and a current code."""
        self._call(
            "POST",
            f"/v1/me/mfa/webauthn/{_seg(credential_id)}/remove",
            json=body(password=password, code=code),
        )

    # --- linked identities ---------------------------------------------------------------------
    def link_telegram(self, widget: JsonObject) -> JsonObject:
        """Links the Telegram account of a Login Widget payload to the signed-in account."""
        return self._json("POST", "/v1/me/identities/telegram", json=dict(widget))

    def list_identities(self) -> JsonObject:
        return self._json("GET", "/v1/me/identities")

    def unlink_identity(self, identity_id: str) -> None:
        self._call("DELETE", f"/v1/me/identities/{_seg(identity_id)}")

    # --- API keys ----------------------------------------------------------------------------
    def create_api_key(
        self,
        name: str,
        scopes: list[str],
        *,
        expires_in_days: int | None = None,
        rate_limit: dict[str, int] | None = None,
        password: str | None = None,
    ) -> JsonObject:
        """The new key (its secret ``key`` is shown this once)."""
        return self._json(
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

    def list_api_keys(self) -> JsonObject:
        return self._json("GET", "/v1/me/api-keys")

    def revoke_api_key(self, key_id: str) -> None:
        self._call("DELETE", f"/v1/me/api-keys/{_seg(key_id)}")

    def revoke_all_api_keys(self) -> None:
        self._call("DELETE", "/v1/me/api-keys")

    def rotate_api_key(
        self, key_id: str, *, grace_seconds: int | None = None, password: str | None = None
    ) -> JsonObject:
        return self._json(
            "POST",
            f"/v1/me/api-keys/{_seg(key_id)}/rotate",
            json=body(grace_seconds=grace_seconds, password=password),
        )

    def api_key_usage(self, key_id: str, *, since: str | None = None, until: str | None = None) -> JsonObject:
        return self._json(
            "GET", f"/v1/me/api-keys/{_seg(key_id)}/usage", params=query(since=since, until=until)
        )

    def verify_api_key(self, key: str, scope: str | None = None) -> JsonObject:
        """``{valid: true, …}`` or ``{valid: false, code}`` (the caller holds ``keys:verify``)."""
        return self._json("POST", "/v1/keys/verify", json=body(key=key, scope=scope))

    def authz_check(self, permission: str, subject_id: str | None = None) -> bool:
        answer = self._call(
            "POST", "/v1/authz/check", json=body(permission=permission, subject_id=subject_id)
        )
        return bool(answer["allowed"])

    def csp_report(self, report: JsonObject) -> None:
        self._call("POST", "/v1/csp-report", json=report, content_type="application/csp-report")

    # --- administration ----------------------------------------------------------------------
    def list_users(
        self, *, q: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> JsonObject:
        return self._json("GET", "/v1/admin/users", params=query(q=q, limit=limit, cursor=cursor))

    def get_user(self, user_id: str) -> JsonObject:
        return self._json("GET", f"/v1/admin/users/{_seg(user_id)}")

    def update_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        roles: list[str] | None = None,
        disabled: bool | None = None,
    ) -> JsonObject:
        return self._json(
            "PATCH", f"/v1/admin/users/{_seg(user_id)}", json=body(name=name, roles=roles, disabled=disabled)
        )

    def delete_user(self, user_id: str, *, immediately: bool = False) -> JsonObject | None:
        """Erases a user: by default scheduled after the grace (``{status, erase_after}``);
        ``immediately=True`` erases now (``None``)."""
        params = query(immediately="true") if immediately else None
        answer = self._call("DELETE", f"/v1/admin/users/{_seg(user_id)}", params=params)
        return answer if isinstance(answer, dict) else None

    def restore_user(self, user_id: str) -> None:
        """Takes back a scheduled erasure within its grace."""
        self._call("POST", f"/v1/admin/users/{_seg(user_id)}/restore")

    def unlock_user(self, user_id: str) -> None:
        self._call("POST", f"/v1/admin/users/{_seg(user_id)}/unlock")

    def revoke_user_sessions(self, user_id: str) -> None:
        self._call("DELETE", f"/v1/admin/users/{_seg(user_id)}/sessions")

    def list_roles(self) -> JsonObject:
        return self._json("GET", "/v1/admin/roles")

    def create_role(self, name: str, permissions: list[str], description: str | None = None) -> JsonObject:
        return self._json(
            "POST", "/v1/admin/roles", json=body(name=name, permissions=permissions, description=description)
        )

    def put_role(self, name: str, permissions: list[str], description: str | None = None) -> JsonObject:
        return self._json(
            "PUT",
            f"/v1/admin/roles/{_seg(name)}",
            json=body(permissions=permissions, description=description),
        )

    def delete_role(self, name: str) -> None:
        self._call("DELETE", f"/v1/admin/roles/{_seg(name)}")

    def list_ip_rules(self) -> JsonObject:
        return self._json("GET", "/v1/admin/ip-rules")

    def create_ip_rule(
        self,
        network: str,
        action: str,
        *,
        scope: str | None = None,
        reason: str | None = None,
        expires_at: str | None = None,
    ) -> JsonObject:
        return self._json(
            "POST",
            "/v1/admin/ip-rules",
            json=body(network=network, action=action, scope=scope, reason=reason, expires_at=expires_at),
        )

    def delete_ip_rule(self, rule_id: str) -> None:
        self._call("DELETE", f"/v1/admin/ip-rules/{_seg(rule_id)}")

    def audit_events(self, **filters: str | int | None) -> JsonObject:
        """Filters: ``actor_id, action, resource_type, resource_id, outcome, severity, ip, since,
        until, cursor, limit``."""
        return self._json("GET", "/v1/admin/audit", params=query(**filters))

    def audit_stats(self, **filters: str | int | None) -> JsonObject:
        return self._json("GET", "/v1/admin/audit/stats", params=query(**filters))

    def audit_export(self, *, format: str = "jsonl", **filters: str | int | None) -> str:
        return self._text("GET", "/v1/admin/audit/export", params=query(format=format, **filters))

    def audit_verify(self) -> JsonObject:
        return self._json("GET", "/v1/admin/audit/verify")

    def gateway_explain(self, method: str, url: str, headers: dict[str, str] | None = None) -> JsonObject:
        return self._json(
            "POST", "/v1/admin/gateway/explain", json=body(method=method, url=url, headers=headers)
        )

    def gateway_rules(self) -> JsonObject:
        return self._json("GET", "/v1/admin/gateway/rules")

    # --- webhooks ----------------------------------------------------------------------------
    def list_webhooks(self) -> JsonObject:
        return self._json("GET", "/v1/admin/webhooks")

    def create_webhook(
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
        return self._json(
            "POST",
            "/v1/admin/webhooks",
            json=body(url=url, events=events, description=description, enabled=enabled, format=format),
        )

    def get_webhook(self, webhook_id: str) -> JsonObject:
        return self._json("GET", f"/v1/admin/webhooks/{_seg(webhook_id)}")

    def update_webhook(
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
        return self._json(
            "PATCH",
            f"/v1/admin/webhooks/{_seg(webhook_id)}",
            json=body(url=url, events=events, description=description, enabled=enabled, format=format),
        )

    def delete_webhook(self, webhook_id: str) -> None:
        self._call("DELETE", f"/v1/admin/webhooks/{_seg(webhook_id)}")

    def rotate_webhook_secret(self, webhook_id: str, grace_seconds: int | None = None) -> JsonObject:
        """``{"secret"}``; the old secret keeps signing beside it for ``grace_seconds``."""
        return self._json(
            "POST",
            f"/v1/admin/webhooks/{_seg(webhook_id)}/rotate-secret",
            json=body(grace_seconds=grace_seconds),
        )

    def test_webhook(self, webhook_id: str) -> JsonObject:
        return self._json("POST", f"/v1/admin/webhooks/{_seg(webhook_id)}/test")

    def webhook_deliveries(
        self,
        webhook_id: str,
        *,
        status: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> JsonObject:
        return self._json(
            "GET",
            f"/v1/admin/webhooks/{_seg(webhook_id)}/deliveries",
            params=query(status=status, cursor=cursor, limit=limit),
        )

    def redeliver_webhook(self, attempt_id: str) -> JsonObject:
        return self._json("POST", f"/v1/admin/webhooks/deliveries/{_seg(attempt_id)}/redeliver")

    # --- notifications and alerts ------------------------------------------------------------
    def notification_preferences(self) -> JsonObject:
        """``{"new_sign_in", "security_changes", "always_on": [...]}``."""
        return self._json("GET", "/v1/me/notifications")

    def set_notification_preferences(
        self, *, new_sign_in: bool | None = None, security_changes: bool | None = None
    ) -> JsonObject:
        """Turns the optional security e-mails on or off; critical ones always go."""
        return self._json(
            "PUT",
            "/v1/me/notifications",
            json=body(new_sign_in=new_sign_in, security_changes=security_changes),
        )

    def list_alerts(self) -> JsonObject:
        return self._json("GET", "/v1/admin/alerts")

    def create_alert(self, rule: JsonObject) -> JsonObject:
        """``rule``: ``{"name", "match": {"action", "outcome"?, "severity"?}, "threshold": {"count",
        "window_secs"}, "channels": [{"email": ...} | {"webhook": ...}], "cooldown_secs", "enabled"?}``."""
        return self._json("POST", "/v1/admin/alerts", json=rule)

    def put_alert(self, rule_id: str, rule: JsonObject) -> JsonObject:
        return self._json("PUT", f"/v1/admin/alerts/{_seg(rule_id)}", json=rule)

    def delete_alert(self, rule_id: str) -> None:
        self._call("DELETE", f"/v1/admin/alerts/{_seg(rule_id)}")

    # --- personal data -----------------------------------------------------------------------
    def export_me(self) -> JsonObject:
        """Everything held about the caller (``format``: ``rampart.personal-data.v1``)."""
        return self._json("GET", "/v1/me/export")

    def delete_me(self, password: str, code: str | None = None) -> JsonObject:
        """Asks for the caller's erasure: disabled now, erased after the grace
        (``{status: "scheduled", erase_after}``)."""
        return self._json("DELETE", "/v1/me", json=body(password=password, code=code))

    def export_user(self, user_id: str) -> JsonObject:
        """The same document about any user (``users:export``)."""
        return self._json("GET", f"/v1/admin/users/{_seg(user_id)}/export")

    # --- bulk exports ------------------------------------------------------------------------
    def create_export(
        self, kind: str, filter: JsonObject | None = None, format: str | None = None
    ) -> JsonObject:
        """Requests a bulk export (``users``: ``users:export_list``; ``audit``: ``audit:export``):
        ``status`` is ``ready``, or ``pending_approval`` over the approval threshold."""
        return self._json("POST", "/v1/admin/exports", json=body(kind=kind, filter=filter, format=format))

    def list_exports(self, status: str | None = None) -> JsonObject:
        """The exports, newest first (``exports:read``); ``status="pending_approval"``: what waits."""
        return self._json("GET", "/v1/admin/exports", params=query(status=status))

    def get_export(self, export_id: str) -> JsonObject:
        return self._json("GET", f"/v1/admin/exports/{_seg(export_id)}")

    def approve_export(self, export_id: str) -> None:
        """A second administrator's approval (``exports:approve``; never the requester)."""
        self._call("POST", f"/v1/admin/exports/{_seg(export_id)}/approve")

    def download_export(self, export_id: str) -> str:
        """The export's rows (JSON Lines or CSV), once, by its requester."""
        return self._text("GET", f"/v1/admin/exports/{_seg(export_id)}/download")
