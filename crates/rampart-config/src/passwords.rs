//! The `[passwords]` section: the policy new passwords meet, argon2id's cost, the hashing
//! threads, history and maximum age.

use crate::settings::{checked, days, span};
use rampart_domain::password::{Argon2Params, CompositionRules, MAX_STRENGTH, PasswordPolicy};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordsConfig {
    /// Shortest password accepted (NIST SP 800-63B: 8; 15 when the password is the only factor).
    pub min_length: usize,
    pub argon2: Argon2Params,
    /// How many passwords are hashed at once, at most (each takes `argon2.memory_kib` of
    /// memory and a core). Default: the number of cores.
    pub max_concurrent_hashes: Option<usize>,
    /// Niceness of the password-hashing threads (0–19; 0: as the rest of the process). Higher
    /// lets other requests go first while logins storm.
    pub hashing_nice: i32,
    /// How many password checks may wait for a hashing thread; past that, requests that need
    /// one answer 503 `overloaded` (with `Retry-After`) instead of queueing minutes of work.
    pub hashing_queue: usize,
    /// Refuse passwords from the list of the most common ones shipped with Rampart.
    pub reject_common: bool,
    /// Refuse passwords that contain the local part of the account's e-mail address.
    pub reject_email_local_part: bool,
    /// Refuse the last N passwords of the account on change and reset (0: off).
    pub history: usize,
    /// After this many days a password must be changed before the next login (0: never).
    pub max_age_days: u64,
    /// Optional composition rules; all off by default, as NIST SP 800-63B advises.
    pub composition: CompositionRules,
    /// The lowest strength accepted (0–4; 0: off), from a guess estimate that matches common
    /// passwords, words, names, keyboard walks, sequences, dates and l33t, and the account's
    /// address and name and the product's names. 3 (about 10⁸ guesses) by default.
    pub min_strength: u8,
}

impl Default for PasswordsConfig {
    fn default() -> Self {
        Self {
            min_length: 8,
            argon2: Argon2Params::default(),
            max_concurrent_hashes: None,
            hashing_nice: 10,
            hashing_queue: 64,
            reject_common: true,
            reject_email_local_part: true,
            history: 5,
            max_age_days: 0,
            composition: CompositionRules::default(),
            min_strength: 3,
        }
    }
}

/// `[passwords]`, ready to use.
#[derive(Debug, Clone)]
pub struct PasswordsSettings {
    /// What a new password must satisfy.
    pub policy: PasswordPolicy,
    pub argon2: Argon2Params,
    /// How many hashing threads: `max_concurrent_hashes`, or the number of cores (2 when that
    /// cannot be told).
    pub hashing_threads: usize,
    /// Niceness of the hashing threads, 0 to 19.
    pub hashing_nice: i32,
    /// How many jobs may wait for a hashing thread before new ones are refused.
    pub hashing_queue: usize,
    /// How many previous passwords are refused (0: off).
    pub history: usize,
    /// How old a password may get before it must be changed; `None`: no limit.
    pub max_age: Option<time::Duration>,
}

impl PasswordsConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(0..=19).contains(&self.hashing_nice) {
            p.push(format!("passwords.hashing_nice: must be between 0 and 19; got {}", self.hashing_nice));
        }
        let (min, got) = (Argon2Params::OWASP_MIN, self.argon2);
        for (key, min, got) in [
            ("memory_kib", min.memory_kib, got.memory_kib),
            ("iterations", min.iterations, got.iterations),
            ("parallelism", min.parallelism, got.parallelism),
        ] {
            if got < min {
                p.push(format!("passwords.argon2.{key}: must be at least {min} (OWASP minimum); got {got}"));
            }
        }
        if self.min_length < 8 {
            p.push(format!("passwords.min_length: must be at least 8 (NIST SP 800-63B); got {}", self.min_length));
        }
        if self.min_length > 64 {
            p.push(format!("passwords.min_length: must be at most 64; got {}", self.min_length));
        }
        if self.hashing_queue == 0 {
            p.push("passwords.hashing_queue: must be at least 1".into());
        }
        if self.max_concurrent_hashes == Some(0) {
            p.push("passwords.max_concurrent_hashes: must be at least 1".into());
        }
        if self.min_strength > MAX_STRENGTH {
            p.push(format!(
                "passwords.min_strength: must be between 0 (off) and {MAX_STRENGTH}; got {}",
                self.min_strength
            ));
        }
        if self.history > 24 {
            p.push(format!("passwords.history: must be at most 24; got {}", self.history));
        }
        p
    }

    /// Checks the section and converts it. `product_names` are the names this deployment goes
    /// by (the TOTP issuer, the passkey relying party's name): with "rampart", the strength
    /// estimate counts them as known words.
    pub fn settings(&self, product_names: &[&str]) -> Result<PasswordsSettings, Vec<String>> {
        let mut dictionary = vec!["rampart".to_string()];
        for name in product_names {
            let name = name.trim().to_lowercase();
            if !name.is_empty() && !dictionary.contains(&name) {
                dictionary.push(name);
            }
        }
        checked(self.problems(), || PasswordsSettings {
            policy: PasswordPolicy {
                min_length: self.min_length,
                reject_common: self.reject_common,
                reject_email_local_part: self.reject_email_local_part,
                composition: self.composition,
                min_strength: self.min_strength,
                dictionary,
            },
            argon2: self.argon2,
            hashing_threads: self
                .max_concurrent_hashes
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            hashing_nice: self.hashing_nice,
            hashing_queue: self.hashing_queue,
            history: self.history,
            max_age: (self.max_age_days > 0).then(|| span(days(self.max_age_days))),
        })
    }
}
