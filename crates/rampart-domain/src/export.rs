//! Bulk exports under four-eyes control (`POST /v1/admin/exports`): what an export is of, its
//! state over time, and when it waits for a second administrator. Pure: the caller passes the
//! time and the configured threshold.

use time::OffsetDateTime;

/// What a bulk export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportKind {
    /// The accounts (the `q` of `GET /v1/admin/users`).
    Users,
    /// Audit events (the filters of `GET /v1/admin/audit`).
    Audit,
}

impl ExportKind {
    pub const ALL: [ExportKind; 2] = [ExportKind::Users, ExportKind::Audit];

    pub fn as_str(self) -> &'static str {
        match self {
            ExportKind::Users => "users",
            ExportKind::Audit => "audit",
        }
    }

    pub fn parse(s: &str) -> Option<ExportKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The permission that creates and downloads an export of this kind.
    pub fn permission(self) -> &'static str {
        match self {
            ExportKind::Users => USERS_LIST_EXPORT,
            ExportKind::Audit => AUDIT_EXPORT,
        }
    }
}

/// Exporting the list of accounts, in bulk.
pub const USERS_LIST_EXPORT: &str = "users:export_list";
/// Exporting audit events, in bulk.
pub const AUDIT_EXPORT: &str = "audit:export";
/// Exporting everything held about one person.
pub const USER_EXPORT: &str = "users:export";
/// Seeing the exports and what waits for approval.
pub const EXPORTS_READ: &str = "exports:read";
/// Approving another administrator's export.
pub const EXPORTS_APPROVE: &str = "exports:approve";

/// Where an export is. Stored: `pending_approval`, `ready`, `downloaded`; `expired` is read
/// from the clock ([`ExportStatus::at`]), so nothing has to run for an export to expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportStatus {
    /// Over the threshold: waits for a second administrator.
    PendingApproval,
    /// May be downloaded, once, before it expires.
    Ready,
    /// Downloaded; never again.
    Downloaded,
    /// Neither approved nor downloaded in time.
    Expired,
}

impl ExportStatus {
    pub const ALL: [ExportStatus; 4] =
        [ExportStatus::PendingApproval, ExportStatus::Ready, ExportStatus::Downloaded, ExportStatus::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::PendingApproval => "pending_approval",
            ExportStatus::Ready => "ready",
            ExportStatus::Downloaded => "downloaded",
            ExportStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<ExportStatus> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The status at `now` of an export stored as `self` that must be acted on (approved, or
    /// downloaded) before `expires_at`.
    pub fn at(self, expires_at: OffsetDateTime, now: OffsetDateTime) -> ExportStatus {
        match self {
            ExportStatus::PendingApproval | ExportStatus::Ready if now >= expires_at => ExportStatus::Expired,
            s => s,
        }
    }
}

/// The status a new export of `rows` rows starts in: over `threshold`, it waits for approval.
pub fn initial_status(rows: u64, threshold: u64) -> ExportStatus {
    if rows > threshold { ExportStatus::PendingApproval } else { ExportStatus::Ready }
}

/// The header row of a users export in CSV.
pub const USERS_CSV_HEADER: &str = "id,email,name,roles,email_verified,disabled,created_at\n";

/// One row of a users export in CSV, in [`USERS_CSV_HEADER`]'s order: quoted where needed,
/// formulas defused (as the audit export's rows are).
pub fn users_csv_row(fields: &[&str]) -> String {
    let mut out = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        crate::audit::csv_field(&mut out, f);
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn names_round_trip() {
        for k in ExportKind::ALL {
            assert_eq!(ExportKind::parse(k.as_str()), Some(k));
        }
        for s in ExportStatus::ALL {
            assert_eq!(ExportStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ExportKind::parse("sessions"), None);
        assert_eq!(ExportKind::Users.permission(), "users:export_list");
        assert_eq!(ExportKind::Audit.permission(), "audit:export");
    }

    #[test]
    fn users_csv_rows_quote_and_defuse() {
        assert_eq!(users_csv_row(&["a", "b,c", "=cmd()"]), "a,\"b,c\",\"'=cmd()\"\n");
        assert_eq!(USERS_CSV_HEADER.matches(',').count(), 6);
    }

    #[test]
    fn over_the_threshold_waits_and_at_it_does_not() {
        assert_eq!(initial_status(0, 1000), ExportStatus::Ready);
        assert_eq!(initial_status(1000, 1000), ExportStatus::Ready);
        assert_eq!(initial_status(1001, 1000), ExportStatus::PendingApproval);
    }

    #[test]
    fn waiting_and_ready_exports_expire_and_downloaded_ones_stay_downloaded() {
        let expires = datetime!(2026-01-02 00:00 UTC);
        let before = datetime!(2026-01-01 23:59:59 UTC);
        for s in [ExportStatus::PendingApproval, ExportStatus::Ready] {
            assert_eq!(s.at(expires, before), s);
            assert_eq!(s.at(expires, expires), ExportStatus::Expired);
        }
        assert_eq!(ExportStatus::Downloaded.at(expires, expires), ExportStatus::Downloaded);
    }
}
