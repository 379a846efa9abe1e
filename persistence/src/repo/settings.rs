//! Server-wide settings kept in the database (the generated local JWT secret).

use diesel::prelude::*;

use crate::schema::server_settings;
use crate::{DbConnection, StoreError};

pub fn get(conn: &mut DbConnection, name: &str) -> Result<Option<String>, StoreError> {
    Ok(server_settings::table
        .find(name)
        .select(server_settings::value)
        .first(conn)
        .optional()?)
}

/// Stores `value` unless the setting exists already, and returns what is stored: two
/// processes starting at once agree on the first writer's value.
pub fn get_or_insert(
    conn: &mut DbConnection,
    name: &str,
    value: &str,
) -> Result<String, StoreError> {
    if let Some(existing) = get(conn, name)? {
        return Ok(existing);
    }
    let inserted = diesel::insert_into(server_settings::table)
        .values((
            server_settings::name.eq(name),
            server_settings::value.eq(value),
        ))
        .execute(conn);
    match inserted.map_err(StoreError::from) {
        Ok(_) | Err(StoreError::Conflict(_)) => {}
        Err(other) => return Err(other),
    }
    get(conn, name)?.ok_or_else(|| StoreError::Corrupt(format!("setting {name} vanished")))
}
