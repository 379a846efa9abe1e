//! `Idempotency-Key`: a retried send with the same key by the same user returns the first
//! result and creates nothing. The stored response lives in the same transaction as the
//! work, so a key is never recorded for work that did not commit.

use domain::{DomainError, UserId};
use persistence::DbConnection;
use persistence::repo::receipts::{self, StoredResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::sha256_hex;
use crate::error::ApiError;

pub const MAX_KEY_LENGTH: usize = 200;

/// A key and the fingerprint of the request it was sent with.
#[derive(Debug, Clone)]
pub struct Key {
    pub key: String,
    pub fingerprint: String,
}

impl Key {
    /// Reads the header value; refuses empty or overlong keys.
    pub fn new(
        header: Option<&str>,
        route: &str,
        body: &impl Serialize,
    ) -> Result<Option<Key>, ApiError> {
        let Some(key) = header.map(str::trim) else {
            return Ok(None);
        };
        if key.is_empty()
            || key.len() > MAX_KEY_LENGTH
            || !key.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(DomainError::invalid(
                "Idempotency-Key",
                "must be 1 to 200 printable characters",
            )
            .into());
        }
        let request =
            serde_json::to_string(body).map_err(|error| ApiError::Internal(error.to_string()))?;
        Ok(Some(Key {
            key: key.to_string(),
            fingerprint: sha256_hex(&format!("{route}\n{request}")),
        }))
    }
}

/// The stored result of an earlier request with this key, if any.
pub fn replay<T: DeserializeOwned>(
    conn: &mut DbConnection,
    user: UserId,
    key: &Key,
) -> Result<Option<T>, ApiError> {
    match receipts::find_key(conn, user, &key.key)? {
        None => Ok(None),
        Some(stored) if stored.request_hash == key.fingerprint => {
            serde_json::from_str(&stored.body)
                .map(Some)
                .map_err(|error| ApiError::Internal(error.to_string()))
        }
        Some(_) => Err(DomainError::invalid(
            "Idempotency-Key",
            "was already used for a different request",
        )
        .into()),
    }
}

/// Remembers the result under the key.
pub fn remember(
    conn: &mut DbConnection,
    user: UserId,
    key: &Key,
    result: &impl Serialize,
) -> Result<(), ApiError> {
    let body =
        serde_json::to_string(result).map_err(|error| ApiError::Internal(error.to_string()))?;
    receipts::insert_key(
        conn,
        user,
        &key.key,
        &StoredResponse {
            request_hash: key.fingerprint.clone(),
            status: 201,
            body,
        },
    )?;
    Ok(())
}
