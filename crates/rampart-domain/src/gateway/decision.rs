//! The gateway's decision for one request, given the rule that applies and who is calling:
//! allow, ask to sign in, refuse, or ask for a fresh second factor. Pure: the caller resolves
//! the credential into a [`Principal`] and passes the time.

use super::path::PathError;
use super::rules::{AuthnKind, Match, Need, OnUnauthenticated, Policy, Require, Rule};
use crate::apikey::covers;
use crate::mfa::Amr;
use crate::permission::Permission;
use crate::user::RoleName;
use time::OffsetDateTime;

/// Who is calling, as the request's credential showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Which credential the request carried.
    pub kind: AuthnKind,
    /// The permissions the credential grants: the user's, or an API key's scopes.
    pub permissions: Vec<Permission>,
    /// A ceiling a requirement must also fit under: for an API key, its owner's current
    /// permissions (a key never holds more than its owner); `None` otherwise.
    pub ceiling: Option<Vec<Permission>>,
    /// The user's roles (for an API key, its owner's, as the caller chooses to pass them).
    pub roles: Vec<RoleName>,
    /// How the user authenticated (`mfa` once a second factor was used). Empty for API keys.
    pub amr: Vec<Amr>,
    /// When the user last authenticated (sign-in or step-up).
    pub auth_time: OffsetDateTime,
}

impl Principal {
    /// Whether the principal holds a requirement: a permission as [`covers`] reads it (within
    /// the ceiling, if any), or a role.
    pub fn holds(&self, need: &Need) -> bool {
        match need {
            Need::Permission(p) => {
                covers(&self.permissions, p.as_str()) && self.ceiling.as_ref().is_none_or(|c| covers(c, p.as_str()))
            }
            Need::Role(r) => self.roles.contains(r),
        }
    }

    /// Whether a second factor was used (`mfa` in the `amr`).
    pub fn has_second_factor(&self) -> bool {
        self.amr.contains(&Amr::Mfa)
    }
}

/// Facts about the request the decision needs besides its rule and principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionInput {
    pub now: OffsetDateTime,
    /// A browser loading a page: `Accept` names `text/html` and there is no `X-Requested-With`.
    pub browser_page_load: bool,
    /// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    pub preflight: bool,
}

/// Why a request is refused although (or before) its caller is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForbiddenReason {
    /// The rule's policy is `deny`.
    Denied,
    /// The principal lacks these of the rule's requirements (for `any`: all of them).
    Missing(Vec<Need>),
    /// The rule needs a second factor or a recent sign-in, which this credential (an API key)
    /// cannot show.
    StepUpImpossible,
    /// The path was refused before any rule applied.
    Path(PathError),
}

impl ForbiddenReason {
    /// A stable name for logs, metrics and `X-Rampart-Deny-Reason`.
    pub fn code(&self) -> &'static str {
        match self {
            ForbiddenReason::Denied => "denied",
            ForbiddenReason::Missing(_) => "missing_permission",
            ForbiddenReason::StepUpImpossible => "step_up_impossible",
            ForbiddenReason::Path(_) => "path_refused",
        }
    }
}

/// What the gateway answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let the request through.
    Allow,
    /// No credential that counts: sign in (a redirect to the sign-in page when `redirect`, else
    /// 401). `not_accepted` names a credential that was presented but does not count here.
    Unauthenticated { redirect: bool, not_accepted: Option<AuthnKind> },
    /// Signed in (or not needed) but refused: 403.
    Forbidden { reason: ForbiddenReason },
    /// Signed in, but the rule wants a second factor (`second_factor`) or a sign-in no older
    /// than `max_age`: sign in again (redirect or 401 as for `Unauthenticated`).
    StepUpRequired { redirect: bool, second_factor: bool, max_age: Option<time::Duration> },
}

impl Decision {
    /// A stable name for metrics and logs.
    pub fn outcome(&self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Unauthenticated { .. } => "unauthenticated",
            Decision::Forbidden { .. } => "forbidden",
            Decision::StepUpRequired { .. } => "step_up",
        }
    }
}

impl Rule {
    /// Whether a request without an accepted credential is sent to the sign-in page.
    pub fn redirects(&self, input: &DecisionInput) -> bool {
        match self.on_unauthenticated {
            OnUnauthenticated::Auto => input.browser_page_load,
            OnUnauthenticated::Redirect => true,
            OnUnauthenticated::Status401 => false,
        }
    }

    /// The decision for a request under this rule. In order: `deny` refuses; `public` and an
    /// allowed preflight pass; then the credential must count (`authn`), the requirements hold
    /// (a step-up cannot add a permission, so this comes before it), and the second factor and
    /// sign-in age satisfy `mfa` and `max_auth_age`.
    pub fn decide(&self, principal: Option<&Principal>, input: &DecisionInput) -> Decision {
        match self.policy {
            Policy::Deny => return Decision::Forbidden { reason: ForbiddenReason::Denied },
            Policy::Public => return Decision::Allow,
            Policy::Authenticated => {}
        }
        if self.allow_preflight && input.preflight {
            return Decision::Allow;
        }
        let redirect = self.redirects(input);
        let Some(p) = principal else {
            return Decision::Unauthenticated { redirect, not_accepted: None };
        };
        if !self.accepts(p.kind) {
            return Decision::Unauthenticated { redirect, not_accepted: Some(p.kind) };
        }
        if let Some(require) = &self.require {
            let missing: Vec<Need> = match require {
                Require::All(needs) => needs.iter().filter(|n| !p.holds(n)).cloned().collect(),
                Require::Any(needs) if needs.iter().any(|n| p.holds(n)) => Vec::new(),
                Require::Any(needs) => needs.clone(),
            };
            if !missing.is_empty() {
                return Decision::Forbidden { reason: ForbiddenReason::Missing(missing) };
            }
        }
        if !self.mfa && self.max_auth_age.is_none() {
            return Decision::Allow;
        }
        if p.kind == AuthnKind::ApiKey {
            return Decision::Forbidden { reason: ForbiddenReason::StepUpImpossible };
        }
        let second_factor = self.mfa && !p.has_second_factor();
        let stale = self.max_auth_age.is_some_and(|max| input.now - p.auth_time > max);
        if second_factor || stale {
            return Decision::StepUpRequired { redirect, second_factor, max_age: self.max_auth_age };
        }
        Decision::Allow
    }
}

impl Match<'_> {
    /// The decision for the request this match is for: its rule's ([`Rule::decide`]), or
    /// `Forbidden` when the path was refused.
    pub fn decide(&self, principal: Option<&Principal>, input: &DecisionInput) -> Decision {
        match self {
            Match::Rule { rule, .. } | Match::Default(rule) => rule.decide(principal, input),
            Match::Refused(e) => Decision::Forbidden { reason: ForbiddenReason::Path(*e) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{RequestFacts, RuleSet, RuleSpec};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2030-01-01 12:00 UTC);

    fn rule(f: impl FnOnce(&mut RuleSpec)) -> Rule {
        let mut s = RuleSpec::new("r", Policy::Authenticated);
        f(&mut s);
        RuleSet::compile(&[s], Policy::Deny).unwrap().rules()[0].clone()
    }

    fn principal(kind: AuthnKind, permissions: &[&str], roles: &[&str], amr: &[Amr], age_secs: i64) -> Principal {
        Principal {
            kind,
            permissions: permissions.iter().map(|p| Permission::parse(p).unwrap()).collect(),
            ceiling: None,
            roles: roles.iter().map(|r| RoleName::parse(r).unwrap()).collect(),
            amr: amr.to_vec(),
            auth_time: NOW - time::Duration::seconds(age_secs),
        }
    }

    fn session() -> Principal {
        principal(AuthnKind::Session, &["orders:read"], &["user"], &[Amr::Pwd], 60)
    }

    const PAGE: DecisionInput = DecisionInput { now: NOW, browser_page_load: true, preflight: false };
    const API: DecisionInput = DecisionInput { now: NOW, browser_page_load: false, preflight: false };
    const PREFLIGHT: DecisionInput = DecisionInput { now: NOW, browser_page_load: false, preflight: true };

    fn unauth(redirect: bool) -> Decision {
        Decision::Unauthenticated { redirect, not_accepted: None }
    }

    fn missing(needs: &[&str]) -> Decision {
        Decision::Forbidden {
            reason: ForbiddenReason::Missing(needs.iter().map(|n| Need::parse(n).unwrap()).collect()),
        }
    }

    #[test]
    fn policies() {
        let public = rule(|s| s.policy = Policy::Public);
        let deny = rule(|s| s.policy = Policy::Deny);
        let auth = rule(|_| {});
        let p = session();
        for input in [PAGE, API, PREFLIGHT] {
            assert_eq!(public.decide(None, &input), Decision::Allow);
            assert_eq!(public.decide(Some(&p), &input), Decision::Allow);
            assert_eq!(deny.decide(None, &input), Decision::Forbidden { reason: ForbiddenReason::Denied });
            assert_eq!(deny.decide(Some(&p), &input), Decision::Forbidden { reason: ForbiddenReason::Denied });
            assert_eq!(auth.decide(Some(&p), &input), Decision::Allow);
        }
        assert_eq!(auth.decide(None, &PAGE), unauth(true));
        assert_eq!(auth.decide(None, &API), unauth(false));
        assert_eq!(auth.decide(None, &PREFLIGHT), unauth(false), "preflights pass only where allowed");
    }

    #[test]
    fn on_unauthenticated_chooses_redirect_or_401() {
        for (on, page, api) in [
            (OnUnauthenticated::Auto, true, false),
            (OnUnauthenticated::Redirect, true, true),
            (OnUnauthenticated::Status401, false, false),
        ] {
            let r = rule(|s| s.on_unauthenticated = on);
            assert_eq!(r.decide(None, &PAGE), unauth(page), "{on:?}");
            assert_eq!(r.decide(None, &API), unauth(api), "{on:?}");
        }
    }

    #[test]
    fn preflights_pass_where_allowed() {
        let r = rule(|s| {
            s.allow_preflight = true;
            s.require = Some(Require::All(vec!["orders:write".into()]));
            s.mfa = true;
        });
        assert_eq!(r.decide(None, &PREFLIGHT), Decision::Allow);
        assert_eq!(r.decide(None, &API), unauth(false), "only the preflight");
    }

    #[test]
    fn credential_kinds() {
        let r = rule(|s| s.authn = vec![AuthnKind::Session]);
        assert_eq!(r.decide(Some(&session()), &API), Decision::Allow);
        let key = principal(AuthnKind::ApiKey, &["*"], &[], &[], 0);
        assert_eq!(
            r.decide(Some(&key), &API),
            Decision::Unauthenticated { redirect: false, not_accepted: Some(AuthnKind::ApiKey) }
        );
        let bearer = principal(AuthnKind::Bearer, &["*"], &[], &[Amr::Pwd], 0);
        assert_eq!(
            r.decide(Some(&bearer), &PAGE),
            Decision::Unauthenticated { redirect: true, not_accepted: Some(AuthnKind::Bearer) }
        );
        let any = rule(|_| {});
        for p in [session(), key, bearer] {
            assert_eq!(any.decide(Some(&p), &API), Decision::Allow, "{:?}", p.kind);
        }
    }

    #[test]
    fn requirements_all_and_any() {
        let all = rule(|s| s.require = Some(Require::All(vec!["orders:write".into(), "role:admin".into()])));
        let any = rule(|s| s.require = Some(Require::Any(vec!["orders:write".into(), "role:admin".into()])));
        let table: [(&[&str], &[&str], Decision, Decision); 6] = [
            (&[], &[], missing(&["orders:write", "role:admin"]), missing(&["orders:write", "role:admin"])),
            (&["orders:write"], &[], missing(&["role:admin"]), Decision::Allow),
            (&[], &["admin"], missing(&["orders:write"]), Decision::Allow),
            (&["orders:write"], &["admin"], Decision::Allow, Decision::Allow),
            (&["orders:*"], &["admin"], Decision::Allow, Decision::Allow),
            (&["*"], &["user"], missing(&["role:admin"]), Decision::Allow),
        ];
        for (perms, roles, want_all, want_any) in table {
            let p = principal(AuthnKind::Session, perms, roles, &[Amr::Pwd], 0);
            assert_eq!(all.decide(Some(&p), &API), want_all, "all {perms:?} {roles:?}");
            assert_eq!(any.decide(Some(&p), &API), want_any, "any {perms:?} {roles:?}");
        }
        // A wildcard requirement needs the same or a wider wildcard, as for API-key scopes.
        let wild = rule(|s| s.require = Some(Require::All(vec!["orders:*".into()])));
        for (perms, ok) in
            [(&["orders:*"][..], true), (&["*"], true), (&["orders:write"], false), (&["users:*"], false)]
        {
            let p = principal(AuthnKind::Bearer, perms, &[], &[Amr::Pwd], 0);
            assert_eq!(wild.decide(Some(&p), &API) == Decision::Allow, ok, "{perms:?}");
        }
        // An API key's scopes count only within its owner's permissions.
        let key = |scopes: &[&str], owner: &[&str]| Principal {
            ceiling: Some(owner.iter().map(|p| Permission::parse(p).unwrap()).collect()),
            ..principal(AuthnKind::ApiKey, scopes, &[], &[], 0)
        };
        let write = rule(|s| s.require = Some(Require::All(vec!["orders:write".into()])));
        assert_eq!(write.decide(Some(&key(&["orders:*"], &["orders:*"])), &API), Decision::Allow);
        assert_eq!(write.decide(Some(&key(&["orders:*"], &["orders:read"])), &API), missing(&["orders:write"]));
        assert_eq!(write.decide(Some(&key(&["orders:read"], &["*"])), &API), missing(&["orders:write"]));
        // Permissions are checked before the second factor: a step-up cannot add one.
        let both = rule(|s| {
            s.require = Some(Require::All(vec!["payments:write".into()]));
            s.mfa = true;
        });
        assert_eq!(both.decide(Some(&session()), &PAGE), missing(&["payments:write"]));
    }

    #[test]
    fn second_factor_and_freshness() {
        let mfa = rule(|s| s.mfa = true);
        let fresh = rule(|s| s.max_auth_age = Some(time::Duration::minutes(5)));
        let both = rule(|s| {
            s.mfa = true;
            s.max_auth_age = Some(time::Duration::minutes(5));
        });
        let step = |redirect, second_factor, max_age: Option<i64>| Decision::StepUpRequired {
            redirect,
            second_factor,
            max_age: max_age.map(time::Duration::minutes),
        };
        let pwd_new = principal(AuthnKind::Session, &[], &[], &[Amr::Pwd], 60);
        let pwd_old = principal(AuthnKind::Session, &[], &[], &[Amr::Pwd], 3600);
        let mfa_new = principal(AuthnKind::Session, &[], &[], &[Amr::Pwd, Amr::Otp, Amr::Mfa], 60);
        let mfa_old = principal(AuthnKind::Bearer, &[], &[], &[Amr::Pwd, Amr::Otp, Amr::Mfa], 3600);
        let passkey = principal(AuthnKind::Session, &[], &[], &[Amr::Hwk, Amr::User, Amr::Mfa], 0);
        let at_limit = principal(AuthnKind::Session, &[], &[], &[Amr::Mfa], 300);
        let future = principal(AuthnKind::Session, &[], &[], &[Amr::Mfa], -30);
        assert_eq!(mfa.decide(Some(&pwd_new), &PAGE), step(true, true, None));
        assert_eq!(mfa.decide(Some(&pwd_new), &API), step(false, true, None));
        assert_eq!(mfa.decide(Some(&mfa_old), &API), Decision::Allow, "mfa alone has no age");
        assert_eq!(mfa.decide(Some(&passkey), &API), Decision::Allow);
        assert_eq!(fresh.decide(Some(&pwd_new), &API), Decision::Allow);
        assert_eq!(fresh.decide(Some(&pwd_old), &API), step(false, false, Some(5)));
        assert_eq!(both.decide(Some(&pwd_new), &API), step(false, true, Some(5)));
        assert_eq!(both.decide(Some(&pwd_old), &PAGE), step(true, true, Some(5)));
        assert_eq!(both.decide(Some(&mfa_old), &API), step(false, false, Some(5)));
        assert_eq!(both.decide(Some(&mfa_new), &API), Decision::Allow);
        assert_eq!(both.decide(Some(&at_limit), &API), Decision::Allow, "exactly max_age old is fresh");
        assert_eq!(both.decide(Some(&future), &API), Decision::Allow, "clock skew is not staleness");
        let key = principal(AuthnKind::ApiKey, &["*"], &[], &[], 0);
        for r in [&mfa, &fresh, &both] {
            assert_eq!(r.decide(Some(&key), &API), Decision::Forbidden { reason: ForbiddenReason::StepUpImpossible });
        }
    }

    #[test]
    fn a_match_decides_and_a_refused_path_is_forbidden() {
        let set = RuleSet::compile(
            &[RuleSpec { paths: vec!["/public/**".into()], ..RuleSpec::new("public", Policy::Public) }],
            Policy::Authenticated,
        )
        .unwrap();
        let decide = |path: &str| set.matching(&RequestFacts { method: "GET", host: "h", path }).decide(None, &PAGE);
        assert_eq!(decide("/public/x"), Decision::Allow);
        assert_eq!(decide("/private"), unauth(true));
        assert_eq!(decide("/public/../private"), unauth(true));
        assert_eq!(
            decide("/public/..%2Fprivate"),
            Decision::Forbidden { reason: ForbiddenReason::Path(PathError::EncodedSlash) }
        );
        assert_eq!(Decision::Allow.outcome(), "allow");
        assert_eq!(ForbiddenReason::Path(PathError::Semicolon).code(), "path_refused");
    }
}
