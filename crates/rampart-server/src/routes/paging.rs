//! The one list shape of the API (`../shared/API.md`, "Lists"): `?limit=` (default 50, at most
//! 500; out of range: 400 `validation_failed`) and `?cursor=` (the `next_cursor` of the
//! previous page) → `{"items": [...], "next_cursor": "…" | null}`.
//!
//! Lists the store pages itself (users, audit events, webhook deliveries) read the two
//! parameters with [`limit_of`] and their own cursor parser. Lists that are small by nature and
//! read whole (a user's sessions, keys and passkeys; roles; IP rules; alert rules; webhook
//! endpoints) are cut into pages here by [`keyset`]: ordered by a unique key, a page starts
//! strictly after the key its cursor names, so an item added or removed between two pages
//! never shifts another one into or out of view.

use rampart_core::{FieldProblem, ServiceError};
use serde::Deserialize;

/// A page's size when the caller names none.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest page.
pub const MAX_LIMIT: u32 = 500;

/// The paging parameters of a list that takes no other query parameter.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Items per page: default 50, 1 to 500.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The page size asked for, checked against 1..=`max`; an error is pushed (and the default
/// returned) when it is out of range.
pub fn limit_of(limit: Option<u32>, max: u32, errors: &mut Vec<FieldProblem>) -> u32 {
    match limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=max).contains(&n) => n,
        Some(_) => {
            errors.push(FieldProblem::new("limit", "out_of_range", format!("from 1 to {max}")));
            DEFAULT_LIMIT
        }
    }
}

/// The problem of a cursor this list did not give out.
pub fn invalid_cursor() -> FieldProblem {
    FieldProblem::new("cursor", "invalid_cursor", "not a cursor this list gave out (its next_cursor)")
}

/// An RFC 3339 time.
pub fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// A query parameter that is an RFC 3339 time (`since`, `until`): `None` when absent, and when
/// malformed, with a 400 `invalid_time` naming `field` pushed to `errors`.
pub fn time_param(field: &str, v: Option<&str>, errors: &mut Vec<FieldProblem>) -> Option<time::OffsetDateTime> {
    let s = v?;
    let t = parse_time(s);
    if t.is_none() {
        errors.push(FieldProblem::new(field, "invalid_time", "must be an RFC 3339 time"));
    }
    t
}

/// How a whole list is ordered by its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

/// The page of `items` that `q` asks for, ordered by `key` (unique per item), with the cursor
/// of the next page (`None` on the last). `parse` reads a cursor back into a key; a cursor it
/// refuses is a 400 `invalid_cursor`, as is a limit out of range.
pub fn keyset<T, K: Ord>(
    items: Vec<T>,
    q: &ListQuery,
    order: Order,
    key: impl Fn(&T) -> K,
    parse: impl Fn(&str) -> Option<K>,
    render: impl Fn(&K) -> String,
) -> Result<(Vec<T>, Option<String>), ServiceError> {
    let mut errors = Vec::new();
    let limit = limit_of(q.limit, MAX_LIMIT, &mut errors) as usize;
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => match parse(c) {
            Some(k) => Some(k),
            None => {
                errors.push(invalid_cursor());
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ServiceError::Validation(errors));
    }
    // Each item's key once, not once per comparison (a name key is a new String each time).
    let mut keyed: Vec<(K, T)> = items.into_iter().map(|i| (key(&i), i)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    if order == Order::Descending {
        keyed.reverse();
    }
    if let Some(after) = after {
        keyed.retain(|(k, _)| match order {
            Order::Ascending => *k > after,
            Order::Descending => *k < after,
        });
    }
    let more = keyed.len() > limit;
    keyed.truncate(limit);
    let next = if more { keyed.last().map(|(k, _)| render(k)) } else { None };
    Ok((keyed.into_iter().map(|(_, i)| i).collect(), next))
}

/// [`keyset`] for lists keyed by a UUID (v7 ids sort by creation): oldest first unless
/// `order` says otherwise.
pub fn by_uuid<T>(
    items: Vec<T>,
    q: &ListQuery,
    order: Order,
    key: impl Fn(&T) -> uuid::Uuid,
) -> Result<(Vec<T>, Option<String>), ServiceError> {
    keyset(items, q, order, key, |c| c.parse().ok(), |k| k.to_string())
}

/// [`keyset`] for lists keyed by a name (roles): in name order. The cursor is opaque (the
/// name, tagged and base64url-encoded), so a string this list did not give out is refused
/// rather than read as a name.
pub fn by_name<T>(
    items: Vec<T>,
    q: &ListQuery,
    key: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), ServiceError> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    const TAG: &str = "name:";
    keyset(
        items,
        q,
        Order::Ascending,
        key,
        |c| {
            let bytes = URL_SAFE_NO_PAD.decode(c).ok()?;
            String::from_utf8(bytes).ok()?.strip_prefix(TAG).map(str::to_string)
        },
        |k| URL_SAFE_NO_PAD.encode(format!("{TAG}{k}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(limit: Option<u32>, cursor: Option<&str>) -> ListQuery {
        ListQuery { limit, cursor: cursor.map(str::to_string) }
    }

    #[test]
    fn pages_walk_every_item_once_in_key_order() {
        let items: Vec<u32> = vec![5, 1, 9, 3, 7];
        let parse = |c: &str| c.parse::<u32>().ok();
        let (p1, c1) =
            keyset(items.clone(), &q(Some(2), None), Order::Ascending, |i| *i, parse, u32::to_string).unwrap();
        assert_eq!(p1, vec![1, 3]);
        let (p2, c2) =
            keyset(items.clone(), &q(Some(2), c1.as_deref()), Order::Ascending, |i| *i, parse, u32::to_string).unwrap();
        assert_eq!(p2, vec![5, 7]);
        let (p3, c3) =
            keyset(items.clone(), &q(Some(2), c2.as_deref()), Order::Ascending, |i| *i, parse, u32::to_string).unwrap();
        assert_eq!((p3, c3), (vec![9], None));
        let (d1, dc) = keyset(items, &q(Some(3), None), Order::Descending, |i| *i, parse, u32::to_string).unwrap();
        assert_eq!((d1, dc.as_deref()), (vec![9, 7, 5], Some("5")));
    }

    #[test]
    fn an_item_removed_between_pages_shifts_nothing() {
        let parse = |c: &str| c.parse::<u32>().ok();
        let (_, c1) =
            keyset(vec![1, 2, 3, 4], &q(Some(2), None), Order::Ascending, |i| *i, parse, u32::to_string).unwrap();
        // 2 (the cursor's own item) and 1 are gone before the second page is read.
        let (p2, _) =
            keyset(vec![3, 4], &q(Some(2), c1.as_deref()), Order::Ascending, |i| *i, parse, u32::to_string).unwrap();
        assert_eq!(p2, vec![3, 4]);
    }

    #[test]
    fn name_cursors_are_opaque_and_read_back() {
        let names = vec!["b".to_string(), "a".to_string(), "c".to_string()];
        let (p1, c1) = by_name(names.clone(), &q(Some(2), None), |s| s.clone()).unwrap();
        assert_eq!(p1, ["a", "b"]);
        assert_ne!(c1.as_deref(), Some("b"), "opaque");
        let (p2, c2) = by_name(names.clone(), &q(Some(2), c1.as_deref()), |s| s.clone()).unwrap();
        assert_eq!((p2, c2), (vec!["c".to_string()], None));
        assert!(by_name(names, &q(None, Some("b")), |s| s.clone()).is_err(), "a bare name is no cursor");
    }

    #[test]
    fn exactly_a_full_last_page_has_no_next_cursor() {
        let (p, c) = by_name(vec!["a".to_string(), "b".to_string()], &q(Some(2), None), |s| s.clone()).unwrap();
        assert_eq!((p.len(), c), (2, None));
    }

    #[test]
    fn limits_and_cursors_out_of_shape_are_validation_errors_naming_the_field() {
        for (limit, cursor, field) in
            [(Some(0), None, "limit"), (Some(501), None, "limit"), (None, Some("nope"), "cursor")]
        {
            let err = by_uuid(vec![uuid::Uuid::nil()], &q(limit, cursor), Order::Ascending, |u| *u).unwrap_err();
            let ServiceError::Validation(errors) = err else { panic!("not a validation error: {err:?}") };
            assert_eq!(errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), vec![field]);
        }
        assert_eq!(
            by_uuid(Vec::<uuid::Uuid>::new(), &q(Some(500), None), Order::Ascending, |u| *u).unwrap().0.len(),
            0
        );
    }
}
