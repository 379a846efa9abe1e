//! Keyset paging for lists: `limit` bounds and opaque cursors.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 25;
pub const MAX_LIMIT: i64 = 100;

pub fn limit(requested: Option<i64>) -> Result<i64, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(_) => Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        ))),
    }
}

/// An opaque cursor over parts of a sort key (the last row's), e.g. `["1700000000123", "42"]`.
pub fn encode(parts: &[String]) -> String {
    URL_SAFE_NO_PAD.encode(parts.join("|"))
}

/// A cursor that is not one this server handed out.
pub fn bad_cursor() -> ApiError {
    ApiError::BadRequest("cursor is not valid; pass next_cursor as it was returned".to_string())
}

/// The longest cursor this server hands out (and takes).
pub const MAX_CURSOR: usize = 2048;

pub fn decode(cursor: &str) -> Result<Vec<String>, ApiError> {
    let bad = bad_cursor;
    if cursor.len() > MAX_CURSOR {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    Ok(text.split('|').map(str::to_string).collect())
}

/// The id after which an id-ordered page starts.
pub fn after_id(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    match decode(cursor)?.as_slice() {
        [id] => id
            .parse()
            .map(Some)
            .map_err(|_| ApiError::BadRequest("cursor is not valid".into())),
        _ => Err(ApiError::BadRequest("cursor is not valid".into())),
    }
}

/// The `next_cursor` of an id-ordered page.
pub fn next_id_cursor(has_more: bool, last_id: Option<i64>) -> Option<String> {
    match (has_more, last_id) {
        (true, Some(id)) => Some(encode(&[id.to_string()])),
        _ => None,
    }
}

/// An order-preserving key for an id (zero-padded, so text order is number order).
pub fn id_key(id: i64) -> String {
    format!("{id:020}")
}

/// Pages a short list held in memory (an organization's inboxes, tags, an inbox's members
/// and channels): sorted by `key`, the items after the cursor's key, at most `limit`.
pub fn in_memory<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let limit = self::limit(limit)?;
    let after = match cursor {
        Some(cursor) => match decode(cursor)?.as_slice() {
            [key] => Some(key.clone()),
            _ => return Err(ApiError::BadRequest("cursor is not valid".into())),
        },
        None => None,
    };
    items.sort_by_key(|item| key(item));
    let mut page: Vec<T> = items
        .into_iter()
        .filter(|item| after.as_ref().is_none_or(|after| key(item) > *after))
        .take(limit as usize + 1)
        .collect();
    let has_more = page.len() as i64 > limit;
    page.truncate(limit as usize);
    let next = if has_more {
        page.last().map(|item| encode(&[key(item)]))
    } else {
        None
    };
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_cursors_round_trip_and_garbage_is_refused() {
        let cursor = next_id_cursor(true, Some(42)).unwrap();
        assert_eq!(after_id(Some(&cursor)).unwrap(), Some(42));
        assert!(after_id(Some("%%%")).is_err());
        assert!(after_id(Some(&encode(&["x".into()]))).is_err());
        assert_eq!(next_id_cursor(false, Some(42)), None);
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(101)).is_err());
        assert_eq!(limit(Some(100)).unwrap(), 100);
    }
}
