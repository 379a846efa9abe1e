//! Runs blocking diesel work on actix's blocking pool, never on the async workers.

use actix_web::web;
use persistence::{DbConnection, Store};

use crate::error::ApiError;

/// Reads on a pooled connection.
pub async fn read<T, F>(store: &Store, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
{
    let store = store.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        work(&mut conn)
    })
    .await?
}

/// Writes in one transaction: all of it commits, or none of it.
pub async fn write<T, F>(store: &Store, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
{
    let store = store.clone();
    web::block(move || write_here(&store, work)).await?
}

/// [`write`] on the calling thread, for work already off the async workers.
pub fn write_here<T>(
    store: &Store,
    work: impl FnOnce(&mut DbConnection) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let mut failure = None;
    let result = store.write(|conn| {
        work(conn).map_err(|error| {
            // Roll back, but keep the ApiError to answer with.
            failure = Some(error);
            persistence::StoreError::Database(diesel_rollback())
        })
    });
    match (result, failure) {
        (_, Some(error)) => Err(error),
        (Ok(value), None) => Ok(value),
        (Err(error), None) => Err(error.into()),
    }
}

fn diesel_rollback() -> persistence::diesel::result::Error {
    persistence::diesel::result::Error::RollbackTransaction
}
