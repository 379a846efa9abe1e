//! Storage failures, kept apart from HTTP: the api maps them to problem documents.

use domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; the name tells which one.
    #[error("unique constraint {0} violated")]
    Conflict(String),
    /// A rule checked inside the transaction refused it.
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(diesel::result::Error),
    #[error("configuration: {0}")]
    Config(String),
}

impl From<diesel::result::Error> for StoreError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                // PostgreSQL names the constraint; SQLite names the columns in the message.
                let name = info.constraint_name().map(str::to_string);
                StoreError::Conflict(name.unwrap_or_else(|| info.message().to_string()))
            }
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                StoreError::Unavailable(info.message().to_string())
            }
            other => StoreError::Database(other),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(error: r2d2::Error) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}
