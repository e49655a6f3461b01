//! Permissions: `resource:action` strings granted by roles, with `*` wildcards
//! (`*` grants everything, `users:*` every action on users).

/// Whether any of `granted` allows `needed` (a concrete `resource:action`).
pub fn allows<S: AsRef<str>>(granted: &[S], needed: &str) -> bool {
    let (resource, _) = needed.split_once(':').unwrap_or((needed, ""));
    granted.iter().any(|g| {
        let g = g.as_ref();
        g == "*" || g == needed || g.strip_suffix(":*").is_some_and(|r| r == resource)
    })
}

#[cfg(test)]
mod tests {
    use super::allows;

    #[test]
    fn wildcards_and_exact_matches() {
        assert!(allows(&["*"], "users:write"));
        assert!(allows(&["users:*"], "users:write"));
        assert!(allows(&["users:write"], "users:write"));
        assert!(!allows(&["users:read"], "users:write"));
        assert!(!allows(&["users:*"], "usersx:write"));
        assert!(!allows(&["user:*"], "users:write"));
        assert!(!allows::<&str>(&[], "users:read"));
        assert!(!allows(&["users"], "users:read"));
    }
}
