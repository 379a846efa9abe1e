//! Tags: the organization's labels for conversations.

use diesel::prelude::*;
use domain::{OrgId, Tag, TagId};

use crate::schema::tags;
use crate::{DbConnection, StoreError, now, to_db};

type TagRow = (i64, i64, String, String);

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
        .returning((tags::id, tags::org_id, tags::name, tags::color))
        .get_result(conn)?;
    Ok(to_tag(row))
}

/// Every tag of the organization, by name as people read it (`billing` before `VIP`), the
/// same on SQLite and on PostgreSQL whatever the database's collation.
pub fn list(conn: &mut DbConnection, org: OrgId) -> Result<Vec<Tag>, StoreError> {
    let rows: Vec<TagRow> = tags::table
        .filter(tags::org_id.eq(org.get()))
        .order((lower(tags::name), tags::name))
        .select((tags::id, tags::org_id, tags::name, tags::color))
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
        .select((tags::id, tags::org_id, tags::name, tags::color))
        .first(conn)
        .optional()?;
    Ok(row.map(to_tag))
}
