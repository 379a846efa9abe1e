//! Switchboard's storage: one code base for PostgreSQL (production) and SQLite (the embedded
//! default), an r2d2 pool, embedded migrations, and repositories that speak domain types.

pub mod connection;
pub mod error;
pub mod repo;
pub mod schema;
mod time;

pub use connection::{Backend, DbConnection, Store};
pub use diesel;
pub use error::StoreError;
pub use time::{from_db, now, to_db};
