//! Contacts: the customers, found by their normalized phone numbers.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use domain::{ContactId, OrgId, UserId};

use domain::contacts::{self as rules, ContactFields};

use crate::connection::MultiBackend;
use crate::schema::{
    contact_activity, contact_favorites, contact_phone_numbers, contact_terms, contacts,
    conversations, message_reactions, messages,
};
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

/// The contact with this address, created (unnamed) when unknown, and locked for the rest
/// of the transaction (so a merge of it waits, or is waited for). Phone numbers are E.164;
/// social channels' sender ids are kept as `<channel>:<id>` in the same table, so one lookup
/// serves every channel (and only `+…` entries are shown as phone numbers).
pub fn find_or_create_by_number(
    conn: &mut DbConnection,
    org: OrgId,
    number: &str,
) -> Result<(Contact, bool), StoreError> {
    find_or_create_with(conn, org, number, None, None)
}

/// Like [`find_or_create_by_number`], giving a new contact the name and e-mail the channel
/// knows (a WhatsApp profile name, what a web chat visitor typed). An existing contact
/// keeps what agents recorded.
pub fn find_or_create_with(
    conn: &mut DbConnection,
    org: OrgId,
    number: &str,
    name: Option<&str>,
    email: Option<&str>,
) -> Result<(Contact, bool), StoreError> {
    // A merge may move the number between the lookup and the lock, and another writer (an
    // import, a text on another channel) may save it between the lookup and the insert:
    // then look again.
    for _ in 0..3 {
        if let Some(id) = owner_of(conn, org, number)? {
            if let Some(contact) = lock(conn, org, id)?
                && owner_of(conn, org, number)? == Some(id)
            {
                return match (name, &contact.name) {
                    // Nobody named them yet: the channel's name for them is better than none.
                    (Some(name), None) => Ok((name_unnamed(conn, org, id, name)?, false)),
                    _ => Ok((contact, false)),
                };
            }
            continue;
        }
        let fields = ContactFields {
            phone_numbers: vec![number.to_string()],
            name: name.map(str::to_string),
            email: email.map(str::to_string),
            ..ContactFields::default()
        };
        match super::savepoint(conn, |conn| insert(conn, org, &fields)) {
            Ok(contact) => return Ok((contact, true)),
            Err(StoreError::Conflict(_)) => continue,
            Err(other) => return Err(other),
        }
    }
    Err(StoreError::Conflict(format!(
        "the address {number} kept changing owner"
    )))
}

/// The contact an address belongs to.
/// Names a contact that has no name (and only then).
fn name_unnamed(
    conn: &mut DbConnection,
    org: OrgId,
    id: ContactId,
    name: &str,
) -> Result<Contact, StoreError> {
    diesel::update(
        contacts::table.filter(
            contacts::id
                .eq(id.get())
                .and(contacts::org_id.eq(org.get()))
                .and(contacts::name.is_null()),
        ),
    )
    .set((
        contacts::name.eq(Some(name)),
        contacts::sort_key.eq(rules::sort_key(Some(name))),
        contacts::updated_at.eq(to_db(now())),
    ))
    .execute(conn)?;
    reindex(conn, org, id)
}

/// The contact that has this address (a phone number in E.164, or `<channel>:<id>`).
pub fn owner_of_address(
    conn: &mut DbConnection,
    org: OrgId,
    address: &str,
) -> Result<Option<ContactId>, StoreError> {
    owner_of(conn, org, address)
}

fn owner_of(
    conn: &mut DbConnection,
    org: OrgId,
    number: &str,
) -> Result<Option<ContactId>, StoreError> {
    let owner: Option<i64> = contact_phone_numbers::table
        .filter(
            contact_phone_numbers::org_id
                .eq(org.get())
                .and(contact_phone_numbers::number.eq(number)),
        )
        .select(contact_phone_numbers::contact_id)
        .first(conn)
        .optional()?;
    Ok(owner.map(ContactId))
}

/// The organization's contact, locked until the transaction ends (see `first_locked!`).
pub fn lock(
    conn: &mut DbConnection,
    org: OrgId,
    id: ContactId,
) -> Result<Option<Contact>, StoreError> {
    let query = contacts::table
        .filter(
            contacts::id
                .eq(id.get())
                .and(contacts::org_id.eq(org.get())),
        )
        .select(contacts::id);
    let found: Option<i64> = first_locked!(conn, query)?;
    match found {
        Some(_) => get(conn, org, id),
        None => Ok(None),
    }
}

/// A new contact with its numbers (a number another contact has: `StoreError::Conflict`).
pub fn insert(
    conn: &mut DbConnection,
    org: OrgId,
    fields: &ContactFields,
) -> Result<Contact, StoreError> {
    let at = to_db(now());
    let id: i64 = diesel::insert_into(contacts::table)
        .values((
            contacts::org_id.eq(org.get()),
            contacts::name.eq(fields.name.as_deref()),
            contacts::email.eq(fields.email.as_deref()),
            contacts::company.eq(fields.company.as_deref()),
            contacts::notes.eq(fields.notes.as_deref()),
            contacts::opted_out_sms.eq(false),
            contacts::sort_key.eq(rules::sort_key(fields.name.as_deref())),
            contacts::created_at.eq(at),
            contacts::updated_at.eq(at),
        ))
        .returning(contacts::id)
        .get_result(conn)?;
    let id = ContactId(id);
    add_numbers(conn, org, id, &fields.phone_numbers)?;
    reindex(conn, org, id)
}

fn add_numbers(
    conn: &mut DbConnection,
    org: OrgId,
    id: ContactId,
    numbers: &[String],
) -> Result<(), StoreError> {
    for number in numbers {
        diesel::insert_into(contact_phone_numbers::table)
            .values((
                contact_phone_numbers::org_id.eq(org.get()),
                contact_phone_numbers::contact_id.eq(id.get()),
                contact_phone_numbers::number.eq(number),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Replaces the contact's fields and phone numbers (its social addresses stay).
pub fn update(
    conn: &mut DbConnection,
    org: OrgId,
    id: ContactId,
    fields: &ContactFields,
) -> Result<Contact, StoreError> {
    diesel::update(
        contacts::table.filter(
            contacts::id
                .eq(id.get())
                .and(contacts::org_id.eq(org.get())),
        ),
    )
    .set((
        contacts::name.eq(fields.name.as_deref()),
        contacts::email.eq(fields.email.as_deref()),
        contacts::company.eq(fields.company.as_deref()),
        contacts::notes.eq(fields.notes.as_deref()),
        contacts::sort_key.eq(rules::sort_key(fields.name.as_deref())),
        contacts::updated_at.eq(to_db(now())),
    ))
    .execute(conn)?;
    let current = get(conn, org, id)?.ok_or(StoreError::Domain(domain::DomainError::NotFound))?;
    let gone: Vec<&String> = current
        .phone_numbers
        .iter()
        .filter(|number| !fields.phone_numbers.contains(number))
        .collect();
    if !gone.is_empty() {
        diesel::delete(
            contact_phone_numbers::table.filter(
                contact_phone_numbers::contact_id
                    .eq(id.get())
                    .and(contact_phone_numbers::number.eq_any(gone)),
            ),
        )
        .execute(conn)?;
    }
    let added: Vec<String> = fields
        .phone_numbers
        .iter()
        .filter(|number| !current.phone_numbers.contains(number))
        .cloned()
        .collect();
    add_numbers(conn, org, id, &added)?;
    reindex(conn, org, id)
}

/// Rewrites the contact's search terms from what it holds now, and answers it.
pub fn reindex(conn: &mut DbConnection, org: OrgId, id: ContactId) -> Result<Contact, StoreError> {
    let contact = get(conn, org, id)?.ok_or(StoreError::Domain(domain::DomainError::NotFound))?;
    diesel::delete(contact_terms::table.filter(contact_terms::contact_id.eq(id.get())))
        .execute(conn)?;
    let terms = rules::search_terms(
        contact.name.as_deref(),
        contact.email.as_deref(),
        contact.company.as_deref(),
        &contact.phone_numbers,
    );
    let rows: Vec<_> = terms
        .iter()
        .map(|term| {
            (
                contact_terms::org_id.eq(org.get()),
                contact_terms::term.eq(term.as_str()),
                contact_terms::contact_id.eq(id.get()),
            )
        })
        .collect();
    if !rows.is_empty() {
        // One multi-row insert (MultiConnection has none: each backend writes its own).
        match conn {
            DbConnection::Postgresql(pg) => {
                diesel::insert_into(contact_terms::table)
                    .values(&rows)
                    .execute(pg)?;
            }
            DbConnection::Sqlite(lite) => {
                diesel::insert_into(contact_terms::table)
                    .values(&rows)
                    .execute(lite)?;
            }
        }
    }
    Ok(contact)
}

/// Gives every contact of every organization its search terms, once (databases made before
/// the terms existed); a settings row records that it is done.
pub fn backfill_terms(conn: &mut DbConnection) -> Result<(), StoreError> {
    const DONE: &str = "contact_terms_v1";
    if super::settings::get(conn, DONE)?.is_some() {
        return Ok(());
    }
    let mut after = 0;
    loop {
        let batch: Vec<(i64, i64)> = contacts::table
            .filter(contacts::id.gt(after))
            .order(contacts::id)
            .limit(500)
            .select((contacts::id, contacts::org_id))
            .load(conn)?;
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        for (id, org) in batch {
            reindex(conn, OrgId(org), ContactId(id))?;
        }
        after = last;
    }
    super::settings::get_or_insert(conn, DONE, "done")?;
    Ok(())
}

/// Sets or clears the contact's sms opt-out.
pub fn set_opted_out_sms(
    conn: &mut DbConnection,
    org: OrgId,
    id: ContactId,
    opted_out: bool,
) -> Result<(), StoreError> {
    diesel::update(
        contacts::table.filter(
            contacts::id
                .eq(id.get())
                .and(contacts::org_id.eq(org.get())),
        ),
    )
    .set((
        contacts::opted_out_sms.eq(opted_out),
        contacts::updated_at.eq(to_db(now())),
    ))
    .execute(conn)?;
    Ok(())
}

/// Marks or unmarks the contact as one of the user's favorites (idempotent).
pub fn set_favorite(
    conn: &mut DbConnection,
    user: UserId,
    contact: &Contact,
    favorite: bool,
) -> Result<(), StoreError> {
    if favorite {
        insert_if_absent!(
            conn,
            diesel::insert_into(contact_favorites::table).values((
                contact_favorites::user_id.eq(user.get()),
                contact_favorites::contact_id.eq(contact.id.get()),
            ))
        )?;
    } else {
        diesel::delete(
            contact_favorites::table.filter(
                contact_favorites::user_id
                    .eq(user.get())
                    .and(contact_favorites::contact_id.eq(contact.id.get())),
            ),
        )
        .execute(conn)?;
    }
    Ok(())
}

/// Whether any conversation refers to the contact.
pub fn has_conversations(conn: &mut DbConnection, id: ContactId) -> Result<bool, StoreError> {
    let found: Option<i64> = conversations::table
        .filter(conversations::contact_id.eq(id.get()))
        .select(conversations::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Deletes a contact: a contact no conversation refers to is removed; one with history
/// becomes anonymous (name, e-mail, company, notes and favorites gone; its numbers and its
/// opt-out stay, so replies still reach the customer and their consent still holds).
/// `true` when the row was removed.
pub fn delete_or_anonymize(
    conn: &mut DbConnection,
    org: OrgId,
    id: ContactId,
) -> Result<bool, StoreError> {
    diesel::delete(contact_favorites::table.filter(contact_favorites::contact_id.eq(id.get())))
        .execute(conn)?;
    if !has_conversations(conn, id)? {
        diesel::delete(message_reactions::table.filter(message_reactions::contact_id.eq(id.get())))
            .execute(conn)?;
        diesel::delete(
            contacts::table.filter(
                contacts::id
                    .eq(id.get())
                    .and(contacts::org_id.eq(org.get())),
            ),
        )
        .execute(conn)?;
        return Ok(true);
    }
    let keep = get(conn, org, id)?.ok_or(StoreError::Domain(domain::DomainError::NotFound))?;
    update(
        conn,
        org,
        id,
        &ContactFields {
            phone_numbers: keep.phone_numbers,
            ..ContactFields::default()
        },
    )?;
    Ok(false)
}

/// Folds `other` into `keep` (both of `org`, both locked by the caller): `fields` and
/// `opted_out` are what the merged contact holds; every address, favorite, reaction,
/// authored message and activity entry of `other` moves to `keep`, and `other` is deleted.
/// Conversations move through their own locks (see `conversations::set_contact`).
pub fn merge(
    conn: &mut DbConnection,
    org: OrgId,
    keep: ContactId,
    other: ContactId,
    fields: &ContactFields,
    opted_out: bool,
) -> Result<Contact, StoreError> {
    diesel::update(
        contact_phone_numbers::table.filter(contact_phone_numbers::contact_id.eq(other.get())),
    )
    .set(contact_phone_numbers::contact_id.eq(keep.get()))
    .execute(conn)?;
    let fans: Vec<i64> = contact_favorites::table
        .filter(contact_favorites::contact_id.eq(other.get()))
        .select(contact_favorites::user_id)
        .load(conn)?;
    diesel::delete(contact_favorites::table.filter(contact_favorites::contact_id.eq(other.get())))
        .execute(conn)?;
    for user in fans {
        insert_if_absent!(
            conn,
            diesel::insert_into(contact_favorites::table).values((
                contact_favorites::user_id.eq(user),
                contact_favorites::contact_id.eq(keep.get()),
            ))
        )?;
    }
    diesel::update(message_reactions::table.filter(message_reactions::contact_id.eq(other.get())))
        .set(message_reactions::contact_id.eq(keep.get()))
        .execute(conn)?;
    diesel::update(
        messages::table.filter(
            messages::org_id
                .eq(org.get())
                .and(messages::author_type.eq("contact"))
                .and(messages::author_id.eq(other.get())),
        ),
    )
    .set(messages::author_id.eq(keep.get()))
    .execute(conn)?;
    diesel::update(contact_activity::table.filter(contact_activity::contact_id.eq(other.get())))
        .set(contact_activity::contact_id.eq(keep.get()))
        .execute(conn)?;
    // A web chat visitor keeps chatting, now as the merged contact.
    diesel::update(
        crate::schema::webchat_visitors::table
            .filter(crate::schema::webchat_visitors::contact_id.eq(other.get())),
    )
    .set(crate::schema::webchat_visitors::contact_id.eq(keep.get()))
    .execute(conn)?;
    diesel::delete(
        contacts::table.filter(
            contacts::id
                .eq(other.get())
                .and(contacts::org_id.eq(org.get())),
        ),
    )
    .execute(conn)?;
    set_opted_out_sms(conn, org, keep, opted_out)?;
    update(conn, org, keep, fields)
}

/// The contacts one of whose phone numbers is among `numbers`, or whose e-mail is `email`.
pub fn matching(
    conn: &mut DbConnection,
    org: OrgId,
    numbers: &[String],
    email: Option<&str>,
) -> Result<Vec<ContactId>, StoreError> {
    let mut found: Vec<i64> = contact_phone_numbers::table
        .filter(
            contact_phone_numbers::org_id
                .eq(org.get())
                .and(contact_phone_numbers::number.eq_any(numbers)),
        )
        .select(contact_phone_numbers::contact_id)
        .load(conn)?;
    if found.is_empty()
        && let Some(email) = email
    {
        found = contact_terms::table
            .filter(
                contact_terms::org_id
                    .eq(org.get())
                    .and(contact_terms::term.eq(rules::email_term(email))),
            )
            .select(contact_terms::contact_id)
            .load(conn)?;
    }
    found.sort_unstable();
    found.dedup();
    Ok(found.into_iter().map(ContactId).collect())
}

/// Where a page of the directory ends: the last row's sort key and id.
pub type Position = (String, i64);

/// What the directory is filtered by.
pub struct Search<'a> {
    /// Prefixes (`domain::contacts::query_prefixes`) that must each match a term.
    pub prefixes: &'a [String],
    /// Only the viewer's favorites.
    pub favorites_of: Option<UserId>,
}

type Boxed = contacts::BoxedQuery<'static, MultiBackend>;

/// A page's query, without its limit and columns: the organization's contacts matching the
/// search, by name, after `after`.
fn page_query(
    conn: &mut DbConnection,
    org: OrgId,
    search: &Search<'_>,
    after: Option<&Position>,
) -> Result<Boxed, StoreError> {
    let mut query: Boxed = contacts::table.into_boxed::<MultiBackend>();
    query = if search.prefixes.is_empty() {
        query.filter(contacts::org_id.eq(org.get()))
    } else {
        // The organization's contacts matching every prefix (one rule with the
        // conversation search's contact part).
        query.filter(super::search::contact_directory_matches(
            conn,
            org,
            search.prefixes,
        )?)
    };
    if let Some(user) = search.favorites_of {
        let favorites = contact_favorites::table
            .filter(contact_favorites::user_id.eq(user.get()))
            .select(contact_favorites::contact_id);
        query = query.filter(contacts::id.eq_any(favorites));
    }
    if let Some((key, id)) = after {
        // The first condition alone is an index range; the second trims its first key.
        query = query
            .filter(contacts::sort_key.ge(key.clone()))
            .filter(contacts::sort_key.gt(key.clone()).or(contacts::id.gt(*id)));
    }
    Ok(query.order((contacts::sort_key, contacts::id)))
}

/// The database's plan for a page of the directory (for tests that check which index
/// serves a search, and for operators checking their indexes).
pub fn explain_page(
    conn: &mut DbConnection,
    org: OrgId,
    search: &Search<'_>,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let query = page_query(conn, org, search, None)?
        .limit(limit)
        .select((contacts::id, contacts::sort_key));
    super::conversation_list::explain(conn, query)
}

/// One page of the organization's contacts, by name, after `after`; every filter is an
/// index range, never a scan of the tenant's contacts.
pub fn list(
    conn: &mut DbConnection,
    org: OrgId,
    search: &Search<'_>,
    after: Option<&Position>,
    limit: i64,
) -> Result<(Vec<Contact>, Option<Position>), StoreError> {
    let query = page_query(conn, org, search, after)?;
    let rows: Vec<(i64, String)> = query
        .limit(limit + 1)
        .select((contacts::id, contacts::sort_key))
        .load(conn)?;
    let page = super::Page::from_overfetch(rows, limit);
    let next = if page.has_more {
        page.items.last().cloned().map(|(id, key)| (key, id))
    } else {
        None
    };
    let ids: Vec<ContactId> = page.items.iter().map(|(id, _)| ContactId(*id)).collect();
    let mut found = get_many(conn, org, &ids)?;
    // In the page's order (get_many answers by id).
    found.sort_by_key(|contact| ids.iter().position(|id| *id == contact.id));
    Ok((found, next))
}

/// Contacts of the organization by id, after `after` (the export walks them all).
pub fn by_id_after(
    conn: &mut DbConnection,
    org: OrgId,
    after: i64,
    limit: i64,
) -> Result<Vec<Contact>, StoreError> {
    let ids: Vec<i64> = contacts::table
        .filter(contacts::org_id.eq(org.get()).and(contacts::id.gt(after)))
        .order(contacts::id)
        .limit(limit)
        .select(contacts::id)
        .load(conn)?;
    let ids: Vec<ContactId> = ids.into_iter().map(ContactId).collect();
    get_many(conn, org, &ids)
}

/// One entry of a contact's activity trail.
pub fn record_activity(
    conn: &mut DbConnection,
    org: OrgId,
    contact: ContactId,
    action: &str,
    actor: Option<UserId>,
    data: &str,
) -> Result<(), StoreError> {
    diesel::insert_into(contact_activity::table)
        .values((
            contact_activity::org_id.eq(org.get()),
            contact_activity::contact_id.eq(contact.get()),
            contact_activity::action.eq(action),
            contact_activity::actor_id.eq(actor.map(UserId::get)),
            contact_activity::data.eq(data),
            contact_activity::at.eq(to_db(now())),
        ))
        .execute(conn)?;
    Ok(())
}

/// The contact's trail, oldest first, after the entry id `after`.
pub fn activity_page(
    conn: &mut DbConnection,
    org: OrgId,
    contact: ContactId,
    after: Option<i64>,
    limit: i64,
) -> Result<super::Page<super::activity::Entry>, StoreError> {
    let rows: Vec<super::activity::EntryRow> = contact_activity::table
        .filter(
            contact_activity::org_id
                .eq(org.get())
                .and(contact_activity::contact_id.eq(contact.get()))
                .and(contact_activity::id.gt(after.unwrap_or(0))),
        )
        .order(contact_activity::id)
        .limit(limit + 1)
        .select((
            contact_activity::id,
            contact_activity::action,
            contact_activity::actor_id,
            contact_activity::data,
            contact_activity::at,
        ))
        .load(conn)?;
    Ok(super::activity::page_of(rows, limit))
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
