//! Criterion micro-benchmarks of the work on Rampart's hot paths, without I/O:
//!
//! - access tokens: sign and verify, per algorithm (EdDSA, ES256), through the same domain
//!   functions the server calls (`SigningKey::sign`, `tokens::verify` with its header checks);
//! - API keys: the format and checksum check, and the SHA-256 that names the key in storage
//!   and in the verify cache;
//! - one rate-limit decision of the in-memory backend (GCRA, sharded), on a warm key set;
//! - argon2id at the configured cost (the shipped defaults unless `RAMPART_PASSWORDS__ARGON2__*`
//!   says otherwise): the hash of a login, and the verification of one;
//! - the check of a new password at the shipped policy (length, common list, e-mail rule and
//!   the zxcvbn strength estimate with the account's words), for a weak, a typical and a
//!   100-character password (the estimate stops there: the worst case). Above a millisecond,
//!   which it can be, it runs on the hashing threads, not the async runtime.
//!
//! `cargo bench -p rampart-server --bench hot_paths` (`-- <filter>` to run a group; `bench/run`
//! runs all of it and copies the means into `bench/RESULTS.md`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rampart_core::limiter::MemoryLimiter;
use rampart_domain::TokenHash;
use rampart_domain::apikey::{self, ApiKey};
use rampart_domain::password::{Argon2Params, Password, PasswordContext, PasswordHasher, PasswordPolicy};
use rampart_domain::ratelimit::Quota;
use rampart_domain::tokens::{self, AccessClaims, Expectation, SigningAlg, SigningKey, VerifyingKeys};
use std::hint::black_box;
use std::time::Duration;
use time::OffsetDateTime;

fn claims(now: OffsetDateTime) -> AccessClaims {
    let t = now.unix_timestamp();
    AccessClaims {
        iss: "rampart".into(),
        aud: "rampart".into(),
        sub: "01937a9c-6b1e-7c3a-9f00-5d2f1e0a4b21".into(),
        sid: "01937a9c-6b1e-7c3a-9f00-5d2f1e0a4b22".into(),
        jti: "01937a9c-6b1e-7c3a-9f00-5d2f1e0a4b23".into(),
        iat: t,
        nbf: t,
        exp: t + 600,
        roles: vec!["user".into()],
        amr: vec!["pwd".into()],
        auth_time: Some(t),
    }
}

fn jwt(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc();
    let expect = Expectation { issuer: "rampart".into(), audience: "rampart".into(), leeway_secs: 30 };
    let mut g = c.benchmark_group("jwt");
    for alg in [SigningAlg::EdDSA, SigningAlg::ES256] {
        let key = SigningKey::generate(alg, &mut rand::rngs::OsRng);
        let keys = VerifyingKeys::from_signing_keys([&key]);
        let claims = claims(now);
        let token = key.sign(&claims).unwrap();
        assert_eq!(tokens::verify(&token, &keys, &expect, now).unwrap(), claims);
        g.bench_function(format!("sign/{}", alg.as_str()), |b| b.iter(|| key.sign(black_box(&claims)).unwrap()));
        g.bench_function(format!("verify/{}", alg.as_str()), |b| {
            b.iter(|| tokens::verify(black_box(&token), &keys, &expect, now).unwrap())
        });
    }
    // The floor (issue 24: verification within 1.3× of it): one raw Ed25519 check of a
    // token-sized message with a parsed key, and one signature.
    let dalek = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let public = dalek.verifying_key();
    let message = vec![b'a'; 330];
    let sig = ed25519_dalek::Signer::sign(&dalek, &message);
    g.bench_function("verify/raw-ed25519-dalek", |b| {
        b.iter(|| public.verify_strict(black_box(&message), &sig).unwrap())
    });
    g.bench_function("sign/raw-ed25519-dalek", |b| b.iter(|| ed25519_dalek::Signer::sign(&dalek, black_box(&message))));
    g.finish();
}

fn api_key(c: &mut Criterion) {
    let key = ApiKey::generate(&mut rand::rngs::OsRng);
    let presented = key.expose().to_string();
    assert_eq!(apikey::check_format(&presented).unwrap(), key.hash());
    let mut g = c.benchmark_group("api_key");
    g.bench_function("parse_and_hash", |b| b.iter(|| apikey::check_format(black_box(&presented)).unwrap()));
    g.bench_function("hash_only", |b| b.iter(|| TokenHash::of(black_box(&presented))));
    g.bench_function("generate", |b| b.iter(|| ApiKey::generate(&mut rand::rngs::OsRng)));
    g.finish();
}

fn limiter(c: &mut Criterion) {
    const KEYS: usize = 10_000;
    let keys: Vec<String> = (0..KEYS).map(|i| format!("bench:ip:198.51.{}.{}", i / 256, i % 256)).collect();
    let quota = Quota::new(1_000_000, Duration::from_secs(60)).unwrap();
    let mem = MemoryLimiter::new(100_000);
    let t0 = 1_700_000_000_000_000i64;
    for (i, k) in keys.iter().enumerate() {
        mem.decide(k, quota, t0 + i as i64);
    }
    let mut g = c.benchmark_group("limiter");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("memory_decision", |b| {
        b.iter(|| {
            i += 1;
            black_box(mem.decide(&keys[i % KEYS], quota, t0 + KEYS as i64 + (i as i64 / 1000)))
        })
    });
    g.finish();
}

/// The configured cost: the shipped defaults, or what `RAMPART_PASSWORDS__ARGON2__*` says,
/// read and validated as `rampart serve` reads them.
fn configured_argon2() -> Argon2Params {
    rampart_config::Config::load(None).expect("the configuration from the environment").passwords.argon2
}

fn argon2(c: &mut Criterion) {
    let params = configured_argon2();
    let hasher = PasswordHasher::new(params).unwrap();
    let password = Password::parse("a long measuring passphrase".into(), &PasswordPolicy::default()).unwrap();
    let phc = hasher.hash(&password, &mut rand::rngs::OsRng).unwrap();
    assert!(hasher.verify(password.expose(), &phc));
    let mut g = c.benchmark_group("argon2");
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    let label = format!("m={},t={},p={}", params.memory_kib, params.iterations, params.parallelism);
    g.bench_function(format!("hash/{label}"), |b| {
        b.iter_batched(|| (), |()| hasher.hash(&password, &mut rand::rngs::OsRng).unwrap(), BatchSize::SmallInput)
    });
    g.bench_function(format!("verify/{label}"), |b| b.iter(|| assert!(hasher.verify(password.expose(), &phc))));
    g.finish();
}

fn password_strength(c: &mut Criterion) {
    let policy = PasswordPolicy::default();
    assert_eq!(policy.min_strength, 3, "the shipped policy estimates strength");
    let account = PasswordContext { email: Some("ann.lee@example.com"), name: Some("Ann Lee") };
    // The first estimate builds the dictionaries (tens of milliseconds, once per process).
    let _ = Password::parse_with("warm up".into(), &policy, &account);
    let long: String = "kX9#qL2m!tR7wZ4pVb".chars().cycle().take(100).collect();
    let mut g = c.benchmark_group("password_strength");
    for (label, pw, strong) in [
        ("weak/Summer2024!", "Summer2024!", false),
        ("typical/correct horse battery staple", "correct horse battery staple", true),
        ("worst/100 chars", long.as_str(), true),
    ] {
        assert_eq!(Password::parse_with(pw.into(), &policy, &account).is_ok(), strong, "{label}");
        g.bench_function(label, |b| {
            b.iter_batched(
                || pw.to_string(),
                |pw| Password::parse_with(pw, black_box(&policy), &account).is_ok(),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, jwt, api_key, limiter, argon2, password_strength);
criterion_main!(benches);
