//! The gateway's rules, pure: which rule a request falls under and what the gateway answers.
//!
//! - [`path`]: request paths and hosts in one canonical form, hostile spellings refused.
//! - [`pattern`]: host patterns, path patterns (exact, `**`/`*` globs, `re:` regexes), methods.
//! - [`rules`]: [`RuleSpec`] (as configured) → [`RuleSet::compile`] → [`RuleSet::matching`]
//!   (first match wins, else the default policy), [`RuleSet::explain`], shadow warnings.
//! - [`decision`]: [`Rule::decide`] for a [`Principal`] (or none): allow, sign in, refuse, step up.
//!
//! The HTTP doors (forward-auth, auth-request, ext-authz), rate-limit counting, the identity
//! assertion and reloading live outside the domain; they read what these types say.

pub mod decision;
pub mod path;
pub mod pattern;
pub mod rules;

pub use decision::{Decision, DecisionInput, ForbiddenReason, Principal};
pub use path::{PathError, normalize_host, normalize_path};
pub use pattern::{HostPattern, PathPattern};
pub use rules::{
    AuthnKind, DEFAULT_RULE_ID, Explanation, Match, Mismatch, Need, NormalizedRequest, OnUnauthenticated, Policy,
    REFUSED_RULE_ID, RequestFacts, Require, Rule, RuleProblem, RuleSet, RuleSpec, Shadowed, Skipped,
};
