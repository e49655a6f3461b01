//! IP rules: allow and block lists of networks (IPv4 and IPv6 CIDRs), for every route or for
//! admin routes only, optionally expiring, and the verdict for one address.
//!
//! - A live **block** rule whose network holds the address refuses it (on every route, or on
//!   admin routes for `admin` scope). Blocks win over allows: an operator's block is final.
//! - **Allow** rules of `admin` scope form the admin allowlist: once there is one, admin routes
//!   admit only addresses inside some allow rule.
//! - An address inside a live **allow** rule of `all` scope is never blocked *automatically*
//!   (fail2ban-style blocks skip it), so an office network cannot lock itself out by typos.

use ipnet::IpNet;
use std::net::IpAddr;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpAction {
    Allow,
    Block,
}

impl IpAction {
    pub fn as_str(self) -> &'static str {
        match self {
            IpAction::Allow => "allow",
            IpAction::Block => "block",
        }
    }

    pub fn parse(s: &str) -> Option<IpAction> {
        [IpAction::Allow, IpAction::Block].into_iter().find(|a| a.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpScope {
    /// Every route.
    All,
    /// Admin routes only (`/v1/admin/…`).
    Admin,
}

impl IpScope {
    pub fn as_str(self) -> &'static str {
        match self {
            IpScope::All => "all",
            IpScope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<IpScope> {
        [IpScope::All, IpScope::Admin].into_iter().find(|a| a.as_str() == s)
    }
}

/// Parses a network (`192.0.2.0/24`, `2001:db8::/32`) or a single address (`/32`, `/128`),
/// with host bits cleared (`192.0.2.7/24` is `192.0.2.0/24`). IPv4-mapped IPv6 addresses are
/// taken as IPv4.
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    let net = match s.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => IpNet::from(s.parse::<IpAddr>().ok()?),
    };
    let net = match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).ok()?,
            None => net,
        },
        other => other,
    };
    Some(net.trunc())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRule {
    pub id: Uuid,
    pub network: IpNet,
    pub action: IpAction,
    pub scope: IpScope,
    pub reason: String,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    /// Created by the automatic (fail2ban-style) blocker rather than by an operator.
    pub automatic: bool,
}

impl IpRule {
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }

    pub fn holds(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.network.contains(&ip)
    }
}

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpVerdict {
    Allowed,
    /// A block rule holds the address (its id).
    Blocked(Uuid),
    /// An admin route, an admin allowlist, and the address is outside it.
    NotAllowlisted,
}

/// The verdict for `ip` on a route (`admin`: an admin route) under `rules` at `now`.
pub fn verdict(rules: &[IpRule], ip: IpAddr, admin: bool, now: OffsetDateTime) -> IpVerdict {
    let live = || rules.iter().filter(|r| r.is_live(now));
    if let Some(b) = live().find(|r| r.action == IpAction::Block && (admin || r.scope == IpScope::All) && r.holds(ip)) {
        return IpVerdict::Blocked(b.id);
    }
    if admin {
        let mut allowlist = live().filter(|r| r.action == IpAction::Allow && r.scope == IpScope::Admin).peekable();
        if allowlist.peek().is_some() && !allowlist.any(|r| r.holds(ip)) {
            return IpVerdict::NotAllowlisted;
        }
    }
    IpVerdict::Allowed
}

/// Whether automatic blocking may block `ip` (not inside a live `all`-scope allow rule).
pub fn may_auto_block(rules: &[IpRule], ip: IpAddr, now: OffsetDateTime) -> bool {
    !rules.iter().any(|r| r.is_live(now) && r.action == IpAction::Allow && r.scope == IpScope::All && r.holds(ip))
}

/// The network an automatic block covers for `ip`: the address itself for IPv4 (and
/// IPv4-mapped IPv6), its /64 for IPv6, since an IPv6 client usually holds a whole /64 and could
/// otherwise step to the next address (the login throttle counts per /64 too).
pub fn auto_block_network(ip: IpAddr) -> IpNet {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            IpNet::new(ip, 64).map(|n| n.trunc()).unwrap_or_else(|_| IpNet::from(ip))
        }
        IpAddr::V6(v6) => IpNet::from(IpAddr::V4(v6.to_ipv4_mapped().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED))),
        v4 => IpNet::from(v4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn rule(net: &str, action: IpAction, scope: IpScope, expires: Option<OffsetDateTime>) -> IpRule {
        IpRule {
            id: Uuid::now_v7(),
            network: parse_cidr(net).unwrap(),
            action,
            scope,
            reason: String::new(),
            created_at: NOW,
            expires_at: expires,
            automatic: false,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_normalised_and_bad_ones_are_refused() {
        assert_eq!(parse_cidr("192.0.2.7/24").unwrap().to_string(), "192.0.2.0/24");
        assert_eq!(parse_cidr("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(parse_cidr("2001:db8::1/32").unwrap().to_string(), "2001:db8::/32");
        assert_eq!(parse_cidr("::ffff:192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        for bad in ["", "192.0.2.0/33", "2001:db8::/129", "example.com", "192.0.2.0/"] {
            assert!(parse_cidr(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn blocks_by_scope_and_expiry_for_v4_and_v6() {
        let b = rule("198.51.100.0/24", IpAction::Block, IpScope::All, None);
        let b6 = rule("2001:db8::/32", IpAction::Block, IpScope::Admin, None);
        let old = rule("203.0.113.0/24", IpAction::Block, IpScope::All, Some(NOW));
        let rules = [b.clone(), b6.clone(), old];
        assert_eq!(verdict(&rules, ip("198.51.100.9"), false, NOW), IpVerdict::Blocked(b.id));
        assert_eq!(verdict(&rules, ip("::ffff:198.51.100.9"), false, NOW), IpVerdict::Blocked(b.id));
        assert_eq!(verdict(&rules, ip("2001:db8::5"), false, NOW), IpVerdict::Allowed, "admin scope only");
        assert_eq!(verdict(&rules, ip("2001:db8::5"), true, NOW), IpVerdict::Blocked(b6.id));
        assert_eq!(verdict(&rules, ip("203.0.113.1"), false, NOW), IpVerdict::Allowed, "expired");
    }

    #[test]
    fn an_admin_allowlist_restricts_admin_routes_only_and_blocks_win() {
        let office = rule("192.0.2.0/24", IpAction::Allow, IpScope::Admin, None);
        let bad_host = rule("192.0.2.66/32", IpAction::Block, IpScope::All, None);
        let rules = [office, bad_host.clone()];
        assert_eq!(verdict(&rules, ip("192.0.2.5"), true, NOW), IpVerdict::Allowed);
        assert_eq!(verdict(&rules, ip("198.51.100.1"), true, NOW), IpVerdict::NotAllowlisted);
        assert_eq!(verdict(&rules, ip("198.51.100.1"), false, NOW), IpVerdict::Allowed);
        assert_eq!(verdict(&rules, ip("192.0.2.66"), true, NOW), IpVerdict::Blocked(bad_host.id));
        // No allowlist: admin routes are open to every unblocked address.
        assert_eq!(verdict(&[], ip("198.51.100.1"), true, NOW), IpVerdict::Allowed);
    }

    #[test]
    fn allowlisted_networks_are_never_blocked_automatically() {
        let rules = [rule("10.0.0.0/8", IpAction::Allow, IpScope::All, None)];
        assert!(!may_auto_block(&rules, ip("10.1.2.3"), NOW));
        assert!(may_auto_block(&rules, ip("198.51.100.1"), NOW));
    }

    #[test]
    fn automatic_blocks_cover_an_ipv6_clients_64() {
        let net = |s: &str| auto_block_network(s.parse().unwrap()).to_string();
        assert_eq!(net("192.0.2.7"), "192.0.2.7/32");
        assert_eq!(net("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(net("::ffff:192.0.2.7"), "192.0.2.7/32");
    }
}
