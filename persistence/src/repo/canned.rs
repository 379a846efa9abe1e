//! Canned responses: an inbox's saved replies, typed by shortcut.

use diesel::prelude::*;
use domain::{CannedResponse, CannedResponseId, InboxId, OrgId};

use crate::schema::canned_responses as canned;
use crate::{DbConnection, StoreError, now, to_db};

type CannedRow = (i64, i64, i64, String, String, String);

const CANNED_COLUMNS: (
    canned::id,
    canned::org_id,
    canned::inbox_id,
    canned::shortcut,
    canned::title,
    canned::body,
) = (
    canned::id,
    canned::org_id,
    canned::inbox_id,
    canned::shortcut,
    canned::title,
    canned::body,
);

fn to_canned((id, org_id, inbox_id, shortcut, title, body): CannedRow) -> CannedResponse {
    CannedResponse {
        id: CannedResponseId(id),
        org_id: OrgId(org_id),
        inbox_id: InboxId(inbox_id),
        shortcut,
        title,
        body,
    }
}

pub fn insert(
    conn: &mut DbConnection,
    org: OrgId,
    inbox: InboxId,
    shortcut: &str,
    title: &str,
    body: &str,
) -> Result<CannedResponse, StoreError> {
    let at = to_db(now());
    let row: CannedRow = diesel::insert_into(canned::table)
        .values((
            canned::org_id.eq(org.get()),
            canned::inbox_id.eq(inbox.get()),
            canned::shortcut.eq(shortcut),
            canned::title.eq(title),
            canned::body.eq(body),
            canned::created_at.eq(at),
            canned::updated_at.eq(at),
        ))
        .returning(CANNED_COLUMNS)
        .get_result(conn)?;
    Ok(to_canned(row))
}

/// The inbox's canned responses by shortcut; with `query`, those whose shortcut starts with
/// it or whose title contains it (case-insensitive), as the composer's `/` search expects.
pub fn list(
    conn: &mut DbConnection,
    inbox: InboxId,
    query: Option<&str>,
) -> Result<Vec<CannedResponse>, StoreError> {
    let rows: Vec<CannedRow> = canned::table
        .filter(canned::inbox_id.eq(inbox.get()))
        .order(canned::shortcut)
        .select(CANNED_COLUMNS)
        .load(conn)?;
    let needle = query.map(str::to_lowercase);
    Ok(rows
        .into_iter()
        .map(to_canned)
        .filter(|canned| match &needle {
            Some(needle) => {
                canned.shortcut.starts_with(needle.as_str())
                    || canned.title.to_lowercase().contains(needle.as_str())
            }
            None => true,
        })
        .collect())
}

pub fn get(
    conn: &mut DbConnection,
    org: OrgId,
    id: CannedResponseId,
) -> Result<Option<CannedResponse>, StoreError> {
    let row: Option<CannedRow> = canned::table
        .filter(canned::id.eq(id.get()).and(canned::org_id.eq(org.get())))
        .select(CANNED_COLUMNS)
        .first(conn)
        .optional()?;
    Ok(row.map(to_canned))
}

pub fn update(
    conn: &mut DbConnection,
    org: OrgId,
    id: CannedResponseId,
    shortcut: &str,
    title: &str,
    body: &str,
) -> Result<CannedResponse, StoreError> {
    let row: CannedRow = diesel::update(
        canned::table.filter(canned::id.eq(id.get()).and(canned::org_id.eq(org.get()))),
    )
    .set((
        canned::shortcut.eq(shortcut),
        canned::title.eq(title),
        canned::body.eq(body),
        canned::updated_at.eq(to_db(now())),
    ))
    .returning(CANNED_COLUMNS)
    .get_result(conn)?;
    Ok(to_canned(row))
}

pub fn delete(conn: &mut DbConnection, org: OrgId, id: CannedResponseId) -> Result<(), StoreError> {
    diesel::delete(canned::table.filter(canned::id.eq(id.get()).and(canned::org_id.eq(org.get()))))
        .execute(conn)?;
    Ok(())
}
