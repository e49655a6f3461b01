//! Token routes: the JWKS that lets any JWT library verify Rampart's access tokens.

use crate::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use rampart_wire::{Jwk, Jwks};

/// How long verifiers may cache the JWKS. Short, so a rotation is seen quickly; verifiers also
/// refetch on an unknown `kid`.
const JWKS_MAX_AGE_SECS: u32 = 60;

/// The public keys that sign access tokens: the current key first, then previous keys until
/// the tokens they signed have expired.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "tokens",
    responses((status = 200, description = "JSON Web Key Set (RFC 7517)", body = Jwks)))]
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let ring = state.signing.ring();
    let keys = ring
        .jwks
        .iter()
        .map(|k| Jwk {
            kty: k.kty.clone(),
            crv: k.crv.clone(),
            x: k.x.clone(),
            y: k.y.clone(),
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            use_: k.use_.clone(),
        })
        .collect();
    ([(header::CACHE_CONTROL, format!("public, max-age={JWKS_MAX_AGE_SECS}"))], Json(Jwks { keys }))
}
