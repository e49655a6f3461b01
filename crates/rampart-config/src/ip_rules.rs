//! The `[ip_rules]` section: automatic (fail2ban-style) temporary blocks. The allow and block
//! rules themselves live in the database (admin API, `rampart ip-rules`).

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

impl IpRulesConfig {
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.auto_block_failures > 0 && (self.auto_block_window_secs == 0 || self.auto_block_secs == 0) {
            p.push("ip_rules: auto_block_window_secs and auto_block_secs must be at least 1".into());
        }
        p
    }
}
