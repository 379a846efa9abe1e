//! Contacts: the customers, found by their normalized phone numbers.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use domain::{ContactId, OrgId, UserId};

use crate::schema::{contact_favorites, contact_phone_numbers, contacts};
use crate::{DbConnection, StoreError, from_db, now, to_db};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: ContactId,
    pub org_id: OrgId,
    pub name: Option<String>,
    pub phone_numbers: Vec<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    pub notes: Option<String>,
    pub opted_out_sms: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

type ContactRow = (
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
    NaiveDateTime,
    NaiveDateTime,
);

const CONTACT_COLUMNS: (
    contacts::id,
    contacts::org_id,
    contacts::name,
    contacts::email,
    contacts::company,
    contacts::notes,
    contacts::opted_out_sms,
    contacts::created_at,
    contacts::updated_at,
) = (
    contacts::id,
    contacts::org_id,
    contacts::name,
    contacts::email,
    contacts::company,
    contacts::notes,
    contacts::opted_out_sms,
    contacts::created_at,
    contacts::updated_at,
);

/// Loads contacts with their numbers: two queries whatever the count.
pub fn get_many(
    conn: &mut DbConnection,
    org: OrgId,
    ids: &[ContactId],
) -> Result<Vec<Contact>, StoreError> {
    let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    let rows: Vec<ContactRow> = contacts::table
        .filter(
            contacts::org_id
                .eq(org.get())
                .and(contacts::id.eq_any(&ids)),
        )
        .order(contacts::id)
        .select(CONTACT_COLUMNS)
        .load(conn)?;
    let numbers: Vec<(i64, String)> = contact_phone_numbers::table
        .filter(contact_phone_numbers::contact_id.eq_any(&ids))
        .order(contact_phone_numbers::id)
        .select((
            contact_phone_numbers::contact_id,
            contact_phone_numbers::number,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, org_id, name, email, company, notes, opted_out_sms, created_at, updated_at)| {
                Contact {
                    id: ContactId(id),
                    org_id: OrgId(org_id),
                    name,
                    phone_numbers: numbers
                        .iter()
                        .filter(|(owner, number)| *owner == id && number.starts_with('+'))
                        .map(|(_, number)| number.clone())
                        .collect(),
                    email,
                    company,
                    notes,
                    opted_out_sms,
                    created_at: from_db(created_at),
                    updated_at: from_db(updated_at),
                }
            },
        )
        .collect())
}

pub fn get(
    conn: &mut DbConnection,
    org: OrgId,
    id: ContactId,
) -> Result<Option<Contact>, StoreError> {
    Ok(get_many(conn, org, &[id])?.pop())
}

/// The contact with this address, created (unnamed) when unknown. Phone numbers are E.164;
/// social channels' sender ids are kept as `<channel>:<id>` in the same table, so one
/// lookup serves every channel (and only `+…` entries are shown as phone numbers).
pub fn find_or_create_by_number(
    conn: &mut DbConnection,
    org: OrgId,
    number: &str,
) -> Result<(Contact, bool), StoreError> {
    let existing: Option<i64> = contact_phone_numbers::table
        .filter(
            contact_phone_numbers::org_id
                .eq(org.get())
                .and(contact_phone_numbers::number.eq(number)),
        )
        .select(contact_phone_numbers::contact_id)
        .first(conn)
        .optional()?;
    if let Some(id) = existing {
        let contact = get(conn, org, ContactId(id))?
            .ok_or_else(|| StoreError::Corrupt(format!("number without contact {id}")))?;
        return Ok((contact, false));
    }
    let at = to_db(now());
    let id: i64 = diesel::insert_into(contacts::table)
        .values((
            contacts::org_id.eq(org.get()),
            contacts::opted_out_sms.eq(false),
            contacts::created_at.eq(at),
            contacts::updated_at.eq(at),
        ))
        .returning(contacts::id)
        .get_result(conn)?;
    diesel::insert_into(contact_phone_numbers::table)
        .values((
            contact_phone_numbers::org_id.eq(org.get()),
            contact_phone_numbers::contact_id.eq(id),
            contact_phone_numbers::number.eq(number),
        ))
        .execute(conn)?;
    let contact = get(conn, org, ContactId(id))?
        .ok_or_else(|| StoreError::Corrupt(format!("contact {id} vanished")))?;
    Ok((contact, true))
}

/// Sets or clears the contact's sms opt-out.
pub fn set_opted_out_sms(
    conn: &mut DbConnection,
    id: ContactId,
    opted_out: bool,
) -> Result<(), StoreError> {
    diesel::update(contacts::table.find(id.get()))
        .set((
            contacts::opted_out_sms.eq(opted_out),
            contacts::updated_at.eq(to_db(now())),
        ))
        .execute(conn)?;
    Ok(())
}

/// Which of the contacts the user marked as favorite.
pub fn favorites_among(
    conn: &mut DbConnection,
    user: UserId,
    ids: &[ContactId],
) -> Result<Vec<ContactId>, StoreError> {
    let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    let found: Vec<i64> = contact_favorites::table
        .filter(
            contact_favorites::user_id
                .eq(user.get())
                .and(contact_favorites::contact_id.eq_any(ids)),
        )
        .select(contact_favorites::contact_id)
        .load(conn)?;
    Ok(found.into_iter().map(ContactId).collect())
}
