//! Tags: the organization's labels for conversations.

use diesel::prelude::*;
use domain::{OrgId, Tag, TagId};

use crate::schema::{conversation_tags as ctags, tags};
use crate::{DbConnection, StoreError, now, to_db};

type TagRow = (i64, i64, String, String);

const COLUMNS: (tags::id, tags::org_id, tags::name, tags::color) =
    (tags::id, tags::org_id, tags::name, tags::color);

diesel::define_sql_function! {
    /// SQL `lower()`: both backends have it, so both order tags alike whatever the collation.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

fn to_tag((id, org_id, name, color): TagRow) -> Tag {
    Tag {
        id: TagId(id),
        org_id: OrgId(org_id),
        name,
        color,
    }
}

pub fn insert(
    conn: &mut DbConnection,
    org: OrgId,
    name: &str,
    color: &str,
) -> Result<Tag, StoreError> {
    let row: TagRow = diesel::insert_into(tags::table)
        .values((
            tags::org_id.eq(org.get()),
            tags::name.eq(name),
            tags::color.eq(color),
            tags::created_at.eq(to_db(now())),
        ))
        .returning(COLUMNS)
        .get_result(conn)?;
    Ok(to_tag(row))
}

/// Every tag of the organization, by name as people read it (`billing` before `VIP`), the
/// same on SQLite and on PostgreSQL whatever the database's collation.
pub fn list(conn: &mut DbConnection, org: OrgId) -> Result<Vec<Tag>, StoreError> {
    let rows: Vec<TagRow> = tags::table
        .filter(tags::org_id.eq(org.get()))
        .order((lower(tags::name), tags::name))
        .select(COLUMNS)
        .load(conn)?;
    Ok(rows.into_iter().map(to_tag).collect())
}

pub fn find_by_name(
    conn: &mut DbConnection,
    org: OrgId,
    name: &str,
) -> Result<Option<Tag>, StoreError> {
    let row: Option<TagRow> = tags::table
        .filter(tags::org_id.eq(org.get()).and(tags::name.eq(name)))
        .select(COLUMNS)
        .first(conn)
        .optional()?;
    Ok(row.map(to_tag))
}

pub fn get(conn: &mut DbConnection, org: OrgId, id: TagId) -> Result<Option<Tag>, StoreError> {
    let row: Option<TagRow> = tags::table
        .filter(tags::id.eq(id.get()).and(tags::org_id.eq(org.get())))
        .select(COLUMNS)
        .first(conn)
        .optional()?;
    Ok(row.map(to_tag))
}

/// The tag by name, held until the transaction ends so that it cannot be deleted (or
/// renamed) under a conversation being tagged with it: PostgreSQL's `FOR KEY SHARE`, which
/// many taggers hold at once; SQLite's single writer holds it already. A tag deleted a
/// moment earlier is not found.
pub fn hold_by_name(
    conn: &mut DbConnection,
    org: OrgId,
    name: &str,
) -> Result<Option<Tag>, StoreError> {
    let query = tags::table
        .filter(tags::org_id.eq(org.get()).and(tags::name.eq(name)))
        .select(COLUMNS);
    let row: Option<TagRow> = match conn {
        DbConnection::Postgresql(pg) => query.for_key_share().first(pg).optional()?,
        DbConnection::Sqlite(lite) => query.first(lite).optional()?,
    };
    Ok(row.map(to_tag))
}

/// What a rename or recoloring changes; `None` leaves a column as it is.
#[derive(AsChangeset)]
#[diesel(table_name = tags)]
pub struct TagChanges<'a> {
    pub name: Option<&'a str>,
    pub color: Option<&'a str>,
}

/// Renames or recolors the organization's tag; `None` when it has no such tag. Only the
/// columns given are written, so a rename and a recoloring at once both hold. A name another
/// tag has is refused by the unique index (`StoreError::Conflict`), also when two renames
/// race: the second waits for the first to commit, then fails.
pub fn update(
    conn: &mut DbConnection,
    org: OrgId,
    id: TagId,
    changes: &TagChanges<'_>,
) -> Result<Option<Tag>, StoreError> {
    if changes.name.is_none() && changes.color.is_none() {
        return get(conn, org, id);
    }
    let row: Option<TagRow> =
        diesel::update(tags::table.filter(tags::id.eq(id.get()).and(tags::org_id.eq(org.get()))))
            .set(changes)
            .returning(COLUMNS)
            .get_result(conn)
            .optional()?;
    Ok(row.map(to_tag))
}

/// Deletes the organization's tag and takes it off every conversation; `false` when it had
/// no such tag. The tag is locked first (`FOR UPDATE`: it waits for the conversations being
/// tagged with it right now, see [`hold_by_name`]), so no conversation keeps it.
pub fn delete(conn: &mut DbConnection, org: OrgId, id: TagId) -> Result<bool, StoreError> {
    let query = tags::table
        .filter(tags::id.eq(id.get()).and(tags::org_id.eq(org.get())))
        .select(tags::id);
    let found: Option<i64> = match conn {
        DbConnection::Postgresql(pg) => query.for_update().first(pg).optional()?,
        DbConnection::Sqlite(lite) => query.first(lite).optional()?,
    };
    let Some(found) = found else {
        return Ok(false);
    };
    diesel::delete(ctags::table.filter(ctags::tag_id.eq(found))).execute(conn)?;
    diesel::delete(tags::table.find(found)).execute(conn)?;
    Ok(true)
}
