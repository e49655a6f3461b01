//! `/v1/transit/*`: encryption as a service in the paths and shapes of Vault's transit engine,
//! so Vault clients (hvac, the Vault Go and Node clients) work unchanged. The credential is a
//! Rampart API key, in `X-Vault-Token` as Vault clients send it (or `X-API-Key`, or a bearer
//! token); scopes name the operation and the key: `transit:encrypt:orders`,
//! `transit:decrypt:orders`, `transit:rewrap:…`, `transit:datakey:…`, `transit:hmac:…`,
//! `transit:sign:…`, `transit:verify:…`, `transit:read:…`, and `transit:keys:…` to create,
//! rotate, configure and delete (`transit:*` for everything).
//!
//! Answers are Vault's: `{"data": …}` in its envelope; errors are `{"errors": ["…"]}` (what
//! Vault clients read) with Rampart's stable `code` beside it.

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use rampart_core::RequestContext;
use rampart_core::services::transit::{self, Item, KeyInfo, TransitFailure};
use rampart_domain::transit::TransitError;
use serde_json::{Value, json};

/// A transit answer: Vault's envelope, or Vault's error shape.
pub struct Vault(Result<(StatusCode, Value), (StatusCode, &'static str, String)>);

impl std::fmt::Debug for Vault {
    // An answer may hold plaintexts and data keys: only its status is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = match &self.0 {
            Ok((s, _)) | Err((s, _, _)) => s,
        };
        f.debug_tuple("Vault").field(status).finish()
    }
}

impl IntoResponse for Vault {
    fn into_response(self) -> Response {
        match self.0 {
            Ok((status, _)) if status == StatusCode::NO_CONTENT => status.into_response(),
            Ok((status, data)) => (
                status,
                Json(json!({
                    "request_id": uuid::Uuid::now_v7().to_string(),
                    "lease_id": "",
                    "renewable": false,
                    "lease_duration": 0,
                    "data": data,
                    "wrap_info": null,
                    "warnings": null,
                    "auth": null,
                })),
            )
                .into_response(),
            Err((status, code, message)) => {
                (status, Json(json!({ "errors": [message], "code": code }))).into_response()
            }
        }
    }
}

fn ok(data: Value) -> Vault {
    Vault(Ok((StatusCode::OK, data)))
}

fn failed(e: TransitFailure) -> Vault {
    Vault(Err(match e {
        TransitFailure::BadRequest(code, message) => (StatusCode::BAD_REQUEST, code, message),
        TransitFailure::NoKey => (StatusCode::NOT_FOUND, "not_found", "encryption key not found".into()),
        TransitFailure::Service(e) => {
            let status = ApiError::from(e).into_response().status();
            let code = if status.is_server_error() { "internal_error" } else { "refused" };
            (status, code, status.canonical_reason().unwrap_or("error").to_lowercase())
        }
    }))
}

macro_rules! vault {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return failed(e),
        }
    };
}

/// The caller, holding `transit:<operation>:<key>`; refusals in Vault's error shape.
async fn allowed(parts: &mut Parts, state: &AppState, operation: &str, key: &str) -> Result<Caller, Vault> {
    let caller = Caller::from_request_parts(parts, state).await.map_err(|e| {
        let status = e.into_response().status();
        let (code, message) = if status == StatusCode::UNAUTHORIZED {
            ("unauthenticated", "missing or invalid token: send a Rampart API key in X-Vault-Token")
        } else {
            ("refused", "refused")
        };
        Vault(Err((status, code, message.into())))
    })?;
    let permission = format!("transit:{operation}:{key}");
    if caller.require(state, &permission).await.is_err() {
        let ctx = crate::auth::request_context(parts);
        let _ = rampart_core::authz::record_denied(state, &ctx, &caller, &permission).await;
        return Err(Vault(Err((
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("permission denied: needs {permission}"),
        ))));
    }
    Ok(caller)
}

/// A transit request: the caller (checked for the operation on the key) and the JSON body
/// (`{}` when there is none). Unknown fields are allowed, as Vault allows them.
pub struct TransitRequest {
    caller: Caller,
    ctx: RequestContext,
    body: Value,
}

impl std::fmt::Debug for TransitRequest {
    // The body holds plaintexts and data keys: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitRequest").field("ctx", &self.ctx).finish_non_exhaustive()
    }
}

fn operation_of(path: &str) -> (&'static str, &str) {
    // /v1/transit/<op>/…/<name>[/<suffix>]
    let rest = path.trim_start_matches("/v1/transit/");
    let mut segs = rest.split('/');
    let first = segs.next().unwrap_or_default();
    let op = match first {
        "keys" => "keys",
        "encrypt" => "encrypt",
        "decrypt" => "decrypt",
        "rewrap" => "rewrap",
        "datakey" => "datakey",
        "hmac" => "hmac",
        "sign" => "sign",
        "verify" => "verify",
        _ => "unknown",
    };
    let name = if op == "datakey" { segs.nth(1) } else { segs.next() };
    (op, name.unwrap_or_default())
}

impl axum::extract::FromRequest<AppState> for TransitRequest {
    type Rejection = Vault;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let (op, name) = operation_of(parts.uri.path());
        let name = name.to_string();
        let op = match (op, &parts.method) {
            ("keys", &axum::http::Method::GET) => "read",
            (op, _) => op,
        };
        let caller = allowed(&mut parts, state, op, &name).await?;
        let ctx = crate::auth::request_context(&parts);
        let bytes = axum::body::to_bytes(body, 4 * 1024 * 1024).await.map_err(|_| {
            Vault(Err((StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the body is over 4 MiB".into())))
        })?;
        let body: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|_| Vault(Err((StatusCode::BAD_REQUEST, "invalid_json", "the body is not JSON".into()))))?
        };
        if !body.is_object() {
            return Err(Vault(Err((StatusCode::BAD_REQUEST, "invalid_json", "the body is not a JSON object".into()))));
        }
        Ok(TransitRequest { caller, ctx, body })
    }
}

fn field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

/// `min_decryption_version`, `bits`…: Vault clients send numbers as numbers or strings.
fn number(body: &Value, name: &str) -> Option<i64> {
    match body.get(name)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn boolean(body: &Value, name: &str) -> Option<bool> {
    match body.get(name)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn key_data(info: &KeyInfo) -> Value {
    let kind = info.kind();
    let keys: serde_json::Map<String, Value> = info
        .versions
        .iter()
        .map(|(v, at, public)| {
            let value = match public {
                Some(pk) => json!({"creation_time": at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(), "name": "ed25519", "public_key": pk}),
                None => json!(at.unix_timestamp()),
            };
            (v.to_string(), value)
        })
        .collect();
    json!({
        "name": info.key.name,
        "type": info.key.kind,
        "derived": info.key.derived,
        "deletion_allowed": info.key.deletion_allowed,
        "exportable": false,
        "allow_plaintext_backup": false,
        "keys": keys,
        "latest_version": info.key.latest_version,
        "min_decryption_version": info.key.min_decryption_version,
        "min_encryption_version": 0,
        "min_available_version": 0,
        "supports_encryption": kind.encrypts(),
        "supports_decryption": kind.encrypts(),
        "supports_derivation": kind.encrypts(),
        "supports_signing": kind.signs(),
        "auto_rotate_period": 0,
    })
}

fn items(body: &Value, value_field: &str) -> Result<(Vec<Item>, bool), Vault> {
    let item = |v: &Value| Item {
        plaintext: (value_field == "plaintext").then(|| field(v, "plaintext").unwrap_or_default().to_string()),
        ciphertext: (value_field == "ciphertext").then(|| field(v, "ciphertext").unwrap_or_default().to_string()),
        context: field(v, "context").map(str::to_string),
    };
    match body.get("batch_input") {
        Some(Value::Array(list)) if !list.is_empty() && list.len() <= 1000 => {
            Ok((list.iter().map(item).collect(), true))
        }
        Some(_) => Err(Vault(Err((
            StatusCode::BAD_REQUEST,
            "invalid_batch",
            "batch_input is a list of 1 to 1000 items".into(),
        )))),
        None if body.get(value_field).is_some() => Ok((vec![item(body)], false)),
        None => {
            Err(Vault(Err((StatusCode::BAD_REQUEST, "missing_field", format!("missing {value_field} to process")))))
        }
    }
}

/// The version a `vault:v<N>:…` text names.
fn version_of(text: &str) -> Option<u64> {
    text.strip_prefix("vault:v").and_then(|r| r.split(':').next()).and_then(|v| v.parse().ok())
}

/// One result or a batch, as Vault shapes them (a failed single item is a 400; a batch with a
/// failed item is a 400 carrying every item's result).
fn results(results: Vec<Result<String, TransitError>>, batch: bool, field_name: &str) -> Vault {
    let version = version_of;
    let one = |r: &Result<String, TransitError>| match r {
        Ok(v) if field_name == "plaintext" => json!({ "plaintext": v }),
        Ok(v) => json!({ field_name: v, "key_version": version(v) }),
        Err(e) => json!({ "error": e.to_string() }),
    };
    if !batch {
        return match results.into_iter().next() {
            Some(Ok(v)) => ok(one(&Ok(v))),
            Some(Err(e)) => failed(e.into()),
            None => failed(TransitFailure::BadRequest("missing_field", "nothing to process".into())),
        };
    }
    let any_failed = results.iter().any(Result::is_err);
    let data = json!({ "batch_results": results.iter().map(one).collect::<Vec<_>>() });
    if any_failed { Vault(Ok((StatusCode::BAD_REQUEST, data))) } else { ok(data) }
}

#[derive(Clone, Copy)]
enum Op {
    Encrypt,
    Decrypt,
    Rewrap,
}

/// Encrypt, decrypt or rewrap one value or a `batch_input`.
async fn batch_op(state: &AppState, name: &str, body: &Value, op: Op) -> Vault {
    let (takes, gives) = match op {
        Op::Encrypt => ("plaintext", "ciphertext"),
        Op::Decrypt => ("ciphertext", "plaintext"),
        Op::Rewrap => ("ciphertext", "ciphertext"),
    };
    let (list, batch) = match items(body, takes) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let done = match op {
        Op::Encrypt => transit::encrypt(state, name, &list).await,
        Op::Decrypt => transit::decrypt(state, name, &list).await,
        Op::Rewrap => transit::rewrap(state, name, &list).await,
    };
    results(vault!(done), batch, gives)
}

/// Creates a key (Vault's `POST /transit/keys/:name`): `type` (`aes256-gcm96`, the default,
/// `chacha20-poly1305`, `ed25519`, `hmac`) and `derived`.
#[utoipa::path(post, path = "/v1/transit/keys/{name}", tag = "transit", operation_id = "transitCreateKey",
    params(("name" = String, Path, description = "The key's name: 1 to 64 of a-z 0-9 _ - .")),
    request_body = Object,
    responses((status = 200, description = "The key, in Vault's envelope", body = Object),
        (status = 400, description = "`{errors: [...], code}`", body = Object),
        (status = 403, description = "Lacks transit:keys:<name>", body = Object)))]
pub async fn create_key(State(state): State<AppState>, Path(name): Path<String>, req: TransitRequest) -> Vault {
    if boolean(&req.body, "exportable") == Some(true) || boolean(&req.body, "convergent_encryption") == Some(true) {
        return failed(TransitFailure::BadRequest(
            "unsupported_option",
            "exportable and convergent keys are not offered: key material never leaves Rampart".into(),
        ));
    }
    let derived = boolean(&req.body, "derived").unwrap_or(false);
    let info =
        vault!(transit::create(&state, &req.ctx, req.caller.actor(), &name, field(&req.body, "type"), derived).await);
    ok(key_data(&info))
}

/// A key's settings and versions (Ed25519 versions with their public keys).
#[utoipa::path(get, path = "/v1/transit/keys/{name}", tag = "transit", operation_id = "transitReadKey",
    params(("name" = String, Path, description = "The key's name")),
    responses((status = 200, description = "The key", body = Object), (status = 404, description = "No such key", body = Object)))]
pub async fn read_key(State(state): State<AppState>, Path(name): Path<String>, _req: TransitRequest) -> Vault {
    ok(key_data(&vault!(transit::read(&state, &name).await)))
}

/// Deletes a key whose `deletion_allowed` is set; what it encrypted can no longer be decrypted.
#[utoipa::path(delete, path = "/v1/transit/keys/{name}", tag = "transit", operation_id = "transitDeleteKey",
    params(("name" = String, Path, description = "The key's name")),
    responses((status = 204, description = "Deleted"), (status = 400, description = "Deletion is not allowed", body = Object)))]
pub async fn delete_key(State(state): State<AppState>, Path(name): Path<String>, req: TransitRequest) -> Vault {
    vault!(transit::delete(&state, &req.ctx, req.caller.actor(), &name).await);
    Vault(Ok((StatusCode::NO_CONTENT, Value::Null)))
}

/// Adds a version; new encryptions use it, older versions still decrypt.
#[utoipa::path(post, path = "/v1/transit/keys/{name}/rotate", tag = "transit", operation_id = "transitRotateKey",
    params(("name" = String, Path, description = "The key's name")),
    responses((status = 200, description = "The key", body = Object)))]
pub async fn rotate_key(State(state): State<AppState>, Path(name): Path<String>, req: TransitRequest) -> Vault {
    ok(key_data(&vault!(transit::rotate(&state, &req.ctx, req.caller.actor(), &name).await)))
}

/// `min_decryption_version` (older ciphertexts are refused) and `deletion_allowed`.
#[utoipa::path(post, path = "/v1/transit/keys/{name}/config", tag = "transit", operation_id = "transitConfigureKey",
    params(("name" = String, Path, description = "The key's name")),
    request_body = Object,
    responses((status = 200, description = "The key", body = Object)))]
pub async fn configure_key(State(state): State<AppState>, Path(name): Path<String>, req: TransitRequest) -> Vault {
    let min = number(&req.body, "min_decryption_version");
    let deletion = boolean(&req.body, "deletion_allowed");
    ok(key_data(&vault!(transit::configure(&state, &req.ctx, req.caller.actor(), &name, min, deletion).await)))
}

/// Encrypts `plaintext` (base64), or each item of `batch_input`; `context` (base64) for a derived key.
#[utoipa::path(post, path = "/v1/transit/encrypt/{name}", tag = "transit", operation_id = "transitEncrypt",
    params(("name" = String, Path, description = "The key's name")), request_body = Object,
    responses((status = 200, description = "`{data: {ciphertext: \"vault:v1:…\", key_version}}` or `batch_results`", body = Object)))]
pub async fn encrypt(State(state): State<AppState>, Path(name): Path<String>, req: TransitRequest) -> Vault {
    batch_op(&state, &name, &req.body, Op::Encrypt).await
}

/// Decrypts `ciphertext`, or each item of `batch_input`: `plaintext` (base64).
#[utoipa::path(post, path = "/v1/transit/decrypt/{name}", tag = "transit", operation_id = "transitDecrypt",
    params(("name" = String, Path, description = "The key's name")), request_body = Object,
    responses((status = 200, description = "`{data: {plaintext}}` or `batch_results`", body = Object)))]
pub async fn decrypt(State(state): State<AppState>, Path(name): Path<String>, req: TransitRequest) -> Vault {
    batch_op(&state, &name, &req.body, Op::Decrypt).await
}

/// Re-encrypts `ciphertext` (or each batch item) under the latest version, without showing it.
#[utoipa::path(post, path = "/v1/transit/rewrap/{name}", tag = "transit", operation_id = "transitRewrap",
    params(("name" = String, Path, description = "The key's name")), request_body = Object,
    responses((status = 200, description = "`{data: {ciphertext, key_version}}` or `batch_results`", body = Object)))]
pub async fn rewrap(State(state): State<AppState>, Path(name): Path<String>, req: TransitRequest) -> Vault {
    batch_op(&state, &name, &req.body, Op::Rewrap).await
}

/// A fresh data key (`bits`: 128, 256 or 512), encrypted under the key; `plaintext` also shows it.
#[utoipa::path(post, path = "/v1/transit/datakey/{kind}/{name}", tag = "transit", operation_id = "transitDataKey",
    params(("kind" = String, Path, description = "`plaintext` or `wrapped`"), ("name" = String, Path, description = "The key's name")),
    request_body = Object,
    responses((status = 200, description = "`{data: {plaintext?, ciphertext, key_version}}`", body = Object)))]
pub async fn datakey(
    State(state): State<AppState>,
    Path((kind, name)): Path<(String, String)>,
    req: TransitRequest,
) -> Vault {
    let wrapped = match kind.as_str() {
        "plaintext" => false,
        "wrapped" => true,
        _ => return failed(TransitFailure::BadRequest("invalid_type", "plaintext or wrapped".into())),
    };
    let bits = number(&req.body, "bits").unwrap_or(256);
    let context = field(&req.body, "context").map(str::to_string);
    let (plaintext, ciphertext) =
        vault!(transit::datakey(&state, &name, wrapped, u32::try_from(bits).unwrap_or(0), context).await);
    let version = version_of(&ciphertext);
    let mut data = json!({ "ciphertext": ciphertext, "key_version": version });
    if let Some(p) = plaintext {
        data["plaintext"] = json!(p);
    }
    ok(data)
}

/// HMAC of `input` (base64) with the key's HMAC key: `algorithm` `sha2-256` (default) or `sha2-512`.
#[utoipa::path(post, path = "/v1/transit/hmac/{name}", tag = "transit", operation_id = "transitHmac",
    params(("name" = String, Path, description = "The key's name")), request_body = Object,
    responses((status = 200, description = "`{data: {hmac: \"vault:v1:…\"}}`", body = Object)))]
pub async fn hmac(State(state): State<AppState>, Path(name): Path<String>, req: TransitRequest) -> Vault {
    let algorithm = field(&req.body, "algorithm").unwrap_or("sha2-256");
    let version = number(&req.body, "key_version").and_then(|v| i32::try_from(v).ok()).filter(|v| *v > 0);
    let input = field(&req.body, "input").unwrap_or_default();
    ok(json!({ "hmac": vault!(transit::hmac(&state, &name, input, algorithm, version).await) }))
}

/// An Ed25519 signature of `input` (base64).
#[utoipa::path(post, path = "/v1/transit/sign/{name}", tag = "transit", operation_id = "transitSign",
    params(("name" = String, Path, description = "The key's name")), request_body = Object,
    responses((status = 200, description = "`{data: {signature: \"vault:v1:…\", key_version}}`", body = Object)))]
pub async fn sign(State(state): State<AppState>, Path(name): Path<String>, req: TransitRequest) -> Vault {
    let signature = vault!(transit::sign(&state, &name, field(&req.body, "input").unwrap_or_default()).await);
    let version = version_of(&signature);
    ok(json!({ "signature": signature, "key_version": version }))
}

/// Whether `signature` signs `input` (base64).
#[utoipa::path(post, path = "/v1/transit/verify/{name}", tag = "transit", operation_id = "transitVerify",
    params(("name" = String, Path, description = "The key's name")), request_body = Object,
    responses((status = 200, description = "`{data: {valid}}`", body = Object)))]
pub async fn verify(State(state): State<AppState>, Path(name): Path<String>, req: TransitRequest) -> Vault {
    let input = field(&req.body, "input").unwrap_or_default();
    let signature = field(&req.body, "signature").unwrap_or_default();
    ok(json!({ "valid": vault!(transit::verify(&state, &name, input, signature).await) }))
}
