//! Web chat visitors: a website's anonymous customer, their contact on the web chat channel,
//! behind a short-lived bearer token of which only the SHA-256 is kept.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use domain::{ChannelId, ContactId, OrgId};

use crate::schema::webchat_visitors as v;
use crate::{DbConnection, StoreError, from_db, now, to_db};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    pub id: i64,
    pub org_id: OrgId,
    pub channel_id: ChannelId,
    pub contact_id: ContactId,
    /// Their address on the channel (`webchat:<key>`): what their messages come from.
    pub address: String,
    pub expires_at: DateTime<Utc>,
}

type VisitorRow = (i64, i64, i64, i64, String, NaiveDateTime);

const COLUMNS: (
    v::id,
    v::org_id,
    v::channel_id,
    v::contact_id,
    v::address,
    v::expires_at,
) = (
    v::id,
    v::org_id,
    v::channel_id,
    v::contact_id,
    v::address,
    v::expires_at,
);

fn to_visitor((id, org_id, channel_id, contact_id, address, expires_at): VisitorRow) -> Visitor {
    Visitor {
        id,
        org_id: OrgId(org_id),
        channel_id: ChannelId(channel_id),
        contact_id: ContactId(contact_id),
        address,
        expires_at: from_db(expires_at),
    }
}

/// A new visitor session for the contact created for it.
pub fn insert(
    conn: &mut DbConnection,
    org: OrgId,
    channel: ChannelId,
    contact: ContactId,
    address: &str,
    token_hash: &str,
    expires_at: DateTime<Utc>,
) -> Result<Visitor, StoreError> {
    let row: VisitorRow = diesel::insert_into(v::table)
        .values((
            v::org_id.eq(org.get()),
            v::channel_id.eq(channel.get()),
            v::contact_id.eq(contact.get()),
            v::address.eq(address),
            v::token_hash.eq(token_hash),
            v::created_at.eq(to_db(now())),
            v::expires_at.eq(to_db(expires_at)),
        ))
        .returning(COLUMNS)
        .get_result(conn)?;
    Ok(to_visitor(row))
}

/// The visitor whose token hashes to `token_hash`, while it has not expired.
pub fn find_live(
    conn: &mut DbConnection,
    token_hash: &str,
    at: DateTime<Utc>,
) -> Result<Option<Visitor>, StoreError> {
    Ok(v::table
        .filter(
            v::token_hash
                .eq(token_hash)
                .and(v::expires_at.gt(to_db(at))),
        )
        .select(COLUMNS)
        .first::<VisitorRow>(conn)
        .optional()?
        .map(to_visitor))
}

/// Removes sessions that expired before `before`; returns how many.
pub fn purge_expired(conn: &mut DbConnection, before: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(diesel::delete(v::table.filter(v::expires_at.lt(to_db(before)))).execute(conn)?)
}
