//! Attachment bytes on disk, under `<data dir>/attachments/<org>/<random key>`: names are
//! never taken from the client, and a file appears whole or not at all (written to a
//! temporary name, then renamed).

use std::path::{Path, PathBuf};

use domain::OrgId;

use crate::auth::random_token;
use crate::error::ApiError;

fn path_of(data_dir: &Path, key: &str) -> Result<PathBuf, ApiError> {
    // Keys are ours ("<org>/<url-safe token>"); refuse anything else rather than trust it.
    let safe = key.split('/').count() == 2
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_'));
    if !safe {
        return Err(ApiError::Internal(format!(
            "unexpected storage key {key:?}"
        )));
    }
    Ok(data_dir.join("attachments").join(key))
}

/// Stores the bytes; returns their storage key.
pub fn save(data_dir: &Path, org: OrgId, bytes: &[u8]) -> Result<String, ApiError> {
    let key = format!("{}/{}", org.get(), random_token(18));
    let path = path_of(data_dir, &key)?;
    let io = |error: std::io::Error| ApiError::Internal(format!("storing an attachment: {error}"));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).map_err(io)?;
    std::fs::rename(&partial, &path).map_err(io)?;
    Ok(key)
}

pub fn load(data_dir: &Path, key: &str) -> Result<Vec<u8>, ApiError> {
    std::fs::read(path_of(data_dir, key)?)
        .map_err(|error| ApiError::Internal(format!("reading an attachment: {error}")))
}
