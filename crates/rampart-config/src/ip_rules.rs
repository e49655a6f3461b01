//! The `[ip_rules]` section: automatic (fail2ban-style) temporary blocks. The allow and block
//! rules themselves live in the database (admin API, `rampart ip-rules`).

use crate::settings::{checked, secs, span};
use rampart_domain::ratelimit::Quota;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IpRulesConfig {
    /// Block an address for `auto_block_secs` after `auto_block_failures` failed
    /// authentications within `auto_block_window_secs` (0 failures: never). Addresses inside an
    /// `allow` rule for all routes are never blocked automatically.
    pub auto_block_failures: u32,
    pub auto_block_window_secs: u64,
    pub auto_block_secs: u64,
}

impl Default for IpRulesConfig {
    fn default() -> Self {
        Self { auto_block_failures: 50, auto_block_window_secs: 600, auto_block_secs: 3600 }
    }
}

/// `[ip_rules]`, ready to use.
#[derive(Debug, Clone)]
pub struct IpRulesSettings {
    /// Automatic blocks; `None` when `auto_block_failures = 0` (never).
    pub auto_block: Option<AutoBlock>,
}

/// When an address is blocked automatically, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoBlock {
    /// `auto_block_failures` failed authentications per `auto_block_window_secs`.
    pub failures: Quota,
    /// How long the block lasts.
    pub duration: time::Duration,
}

impl IpRulesConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.auto_block_failures > 0 {
            for (key, value) in [
                ("ip_rules.auto_block_window_secs", self.auto_block_window_secs),
                ("ip_rules.auto_block_secs", self.auto_block_secs),
            ] {
                if value == 0 {
                    p.push(format!("{key}: must be at least 1 (or ip_rules.auto_block_failures = 0)"));
                }
            }
        }
        p
    }

    /// Checks the section and converts it.
    pub fn settings(&self) -> Result<IpRulesSettings, Vec<String>> {
        checked(self.problems(), || IpRulesSettings {
            auto_block: Quota::new(self.auto_block_failures, secs(self.auto_block_window_secs))
                .map(|failures| AutoBlock { failures, duration: span(secs(self.auto_block_secs)) }),
        })
    }
}
