//! Organizations: the tenants.

use diesel::prelude::*;
use domain::{OrgId, Organization};

use crate::schema::organizations;
use crate::{DbConnection, StoreError, from_db, now, to_db};

type OrgRow = (i64, String, chrono::NaiveDateTime);

fn to_org((id, name, created_at): OrgRow) -> Organization {
    Organization {
        id: OrgId(id),
        name,
        created_at: from_db(created_at),
    }
}

pub fn insert(conn: &mut DbConnection, name: &str) -> Result<Organization, StoreError> {
    let row: OrgRow = diesel::insert_into(organizations::table)
        .values((
            organizations::name.eq(name),
            organizations::created_at.eq(to_db(now())),
        ))
        .returning((
            organizations::id,
            organizations::name,
            organizations::created_at,
        ))
        .get_result(conn)?;
    Ok(to_org(row))
}

pub fn find_by_name(
    conn: &mut DbConnection,
    name: &str,
) -> Result<Option<Organization>, StoreError> {
    let row: Option<OrgRow> = organizations::table
        .filter(organizations::name.eq(name))
        .select((
            organizations::id,
            organizations::name,
            organizations::created_at,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(to_org))
}

pub fn get(conn: &mut DbConnection, id: OrgId) -> Result<Option<Organization>, StoreError> {
    let row: Option<OrgRow> = organizations::table
        .find(id.get())
        .select((
            organizations::id,
            organizations::name,
            organizations::created_at,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(to_org))
}
