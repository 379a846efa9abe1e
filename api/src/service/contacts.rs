//! The contact use cases: the directory and its search, edits, favorites, manual opt-outs,
//! history, merges and deletion. Every change locks the contact's row first (so two edits,
//! or an edit and a merge, run one after the other), records the contact's activity trail
//! and announces `contact.updated` through the outbox.

use chrono::NaiveDateTime;
use domain::contacts::{self as rules, ContactFields};
use domain::{Actor, ContactId, DomainError, EventType, Role, policy};
use openapi as wire;
use openapi::ErrorCode;
use persistence::DbConnection;
use persistence::repo::contacts::{self, Contact, Search};
use persistence::repo::{conversation_list, conversations};
use serde_json::json;

use super::events::Outbox;
use super::{present, visibility};
use crate::error::{ApiError, on_conflict};
use crate::paging;

const NUMBER_TAKEN: &str = "one of these phone numbers belongs to another contact";

/// The organization's contact, or 404.
fn found(conn: &mut DbConnection, actor: &Actor, id: ContactId) -> Result<Contact, ApiError> {
    contacts::get(conn, actor.org_id, id)?.ok_or_else(ApiError::not_found)
}

/// The organization's contact, locked for the change under way, or 404.
fn locked(conn: &mut DbConnection, actor: &Actor, id: ContactId) -> Result<Contact, ApiError> {
    contacts::lock(conn, actor.org_id, id)?.ok_or_else(ApiError::not_found)
}

/// The contact as `actor` sees it (with their favorite flag).
pub fn show(
    conn: &mut DbConnection,
    actor: &Actor,
    contact: Contact,
) -> Result<wire::Contact, ApiError> {
    let favorite = !contacts::favorites_among(conn, actor.user_id, &[contact.id])?.is_empty();
    Ok(present::contact(contact, favorite))
}

pub fn get(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ContactId,
) -> Result<wire::Contact, ApiError> {
    let contact = found(conn, actor, id)?;
    show(conn, actor, contact)
}

fn fields_of(contact: &Contact) -> ContactFields {
    ContactFields {
        name: contact.name.clone(),
        phone_numbers: contact.phone_numbers.clone(),
        email: contact.email.clone(),
        company: contact.company.clone(),
        notes: contact.notes.clone(),
    }
}

/// Announces the contact to the organization (caller-neutral: no favorite flag).
fn announce(outbox: &mut Outbox, contact: &Contact) -> Result<(), ApiError> {
    outbox.contact(contact.org_id, &present::contact(contact.clone(), false))
}

fn record(
    conn: &mut DbConnection,
    actor: &Actor,
    contact: ContactId,
    action: &str,
    data: serde_json::Value,
) -> Result<(), ApiError> {
    Ok(contacts::record_activity(
        conn,
        actor.org_id,
        contact,
        action,
        Some(actor.user_id),
        &data.to_string(),
    )?)
}

fn encode_position((key, id): &contacts::Position) -> String {
    paging::encode(&[key.clone(), id.to_string()])
}

fn decode_position(cursor: &str) -> Result<contacts::Position, ApiError> {
    match paging::decode(cursor)?.as_slice() {
        [key, id] => Ok((key.clone(), id.parse().map_err(|_| paging::bad_cursor())?)),
        _ => Err(paging::bad_cursor()),
    }
}

/// One page of the directory, by name.
pub fn list(
    conn: &mut DbConnection,
    actor: &Actor,
    query: &wire::ContactQuery,
) -> Result<wire::ContactPage, ApiError> {
    let limit = paging::limit(query.limit)?;
    let after = query.cursor.as_deref().map(decode_position).transpose()?;
    let q = query.q.as_deref().unwrap_or("");
    if q.chars().count() > 200 {
        return Err(ApiError::BadRequest(
            "q must be at most 200 characters".into(),
        ));
    }
    let prefixes = rules::query_prefixes(q);
    if !q.trim().is_empty() && prefixes.is_empty() {
        // Only punctuation: nothing can match.
        return Ok(wire::ContactPage {
            items: Vec::new(),
            next_cursor: None,
        });
    }
    let search = Search {
        prefixes: &prefixes,
        favorites_of: (query.favorite == Some(true)).then_some(actor.user_id),
    };
    let (page, next) = contacts::list(conn, actor.org_id, &search, after.as_ref(), limit)?;
    let ids: Vec<ContactId> = page.iter().map(|contact| contact.id).collect();
    let favorites = contacts::favorites_among(conn, actor.user_id, &ids)?;
    Ok(wire::ContactPage {
        items: page
            .into_iter()
            .map(|contact| {
                let favorite = favorites.contains(&contact.id);
                present::contact(contact, favorite)
            })
            .collect(),
        next_cursor: next.as_ref().map(encode_position),
    })
}

fn validated(
    name: Option<&str>,
    phone_numbers: &[String],
    email: Option<&str>,
    company: Option<&str>,
    notes: Option<&str>,
) -> Result<ContactFields, ApiError> {
    Ok(rules::fields(name, phone_numbers, email, company, notes)?)
}

pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    body: &wire::CreateContact,
    outbox: &mut Outbox,
) -> Result<wire::Contact, ApiError> {
    let fields = validated(
        body.name.as_deref(),
        &body.phone_numbers,
        body.email.as_deref(),
        body.company.as_deref(),
        body.notes.as_deref(),
    )?;
    rules::ensure_identifiable(&fields)?;
    let contact = contacts::insert(conn, actor.org_id, &fields)
        .map_err(on_conflict(ErrorCode::Duplicate, NUMBER_TAKEN))?;
    record(conn, actor, contact.id, "created", json!({}))?;
    announce(outbox, &contact)?;
    show(conn, actor, contact)
}

pub fn update(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ContactId,
    patch: &wire::UpdateContact,
    outbox: &mut Outbox,
) -> Result<wire::Contact, ApiError> {
    let before = locked(conn, actor, id)?;
    let current = fields_of(&before);
    let pick = |patched: &Option<Option<String>>, was: &Option<String>| -> Option<String> {
        match patched {
            Some(value) => value.clone(),
            None => was.clone(),
        }
    };
    let name = pick(&patch.name, &current.name);
    let email = pick(&patch.email, &current.email);
    let company = pick(&patch.company, &current.company);
    let notes = pick(&patch.notes, &current.notes);
    let numbers = patch
        .phone_numbers
        .clone()
        .unwrap_or_else(|| current.phone_numbers.clone());
    let fields = validated(
        name.as_deref(),
        &numbers,
        email.as_deref(),
        company.as_deref(),
        notes.as_deref(),
    )?;
    if fields == current {
        return show(conn, actor, before);
    }
    let changed: Vec<&str> = [
        ("name", fields.name != current.name),
        (
            "phone_numbers",
            fields.phone_numbers != current.phone_numbers,
        ),
        ("email", fields.email != current.email),
        ("company", fields.company != current.company),
        ("notes", fields.notes != current.notes),
    ]
    .into_iter()
    .filter_map(|(field, differs)| differs.then_some(field))
    .collect();
    let contact = contacts::update(conn, actor.org_id, id, &fields)
        .map_err(on_conflict(ErrorCode::Duplicate, NUMBER_TAKEN))?;
    record(conn, actor, id, "updated", json!({ "fields": changed }))?;
    announce(outbox, &contact)?;
    show(conn, actor, contact)
}

/// Deletes (or, with history, anonymizes) a contact; supervisors only.
pub fn delete(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ContactId,
    outbox: &mut Outbox,
) -> Result<(), ApiError> {
    policy::may_curate_contacts(actor)?;
    locked(conn, actor, id)?;
    if !contacts::delete_or_anonymize(conn, actor.org_id, id)? {
        record(conn, actor, id, "anonymized", json!({}))?;
        let contact = found(conn, actor, id)?;
        announce(outbox, &contact)?;
    }
    Ok(())
}

pub fn set_favorite(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ContactId,
    favorite: bool,
) -> Result<wire::Contact, ApiError> {
    // Locked, so a favorite and the contact's deletion at once are one after the other
    // (the favorite then hears 404), never a favorite of a deleted contact.
    let contact = locked(conn, actor, id)?;
    contacts::set_favorite(conn, actor.user_id, &contact, favorite)?;
    Ok(present::contact(contact, favorite))
}

/// A manual opt-out (a customer who asked by phone) or opt-in, as an inbound STOP/START
/// would do it; recorded and announced only when it changes something.
pub fn set_opt_out(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ContactId,
    sms: bool,
    outbox: &mut Outbox,
) -> Result<wire::Contact, ApiError> {
    let contact = locked(conn, actor, id)?;
    if contact.opted_out_sms == sms {
        return show(conn, actor, contact);
    }
    contacts::set_opted_out_sms(conn, actor.org_id, id, sms)?;
    let action = if sms { "opted_out" } else { "opted_in" };
    record(
        conn,
        actor,
        id,
        action,
        json!({"channel": "sms", "source": "manual"}),
    )?;
    let contact = found(conn, actor, id)?;
    announce(outbox, &contact)?;
    show(conn, actor, contact)
}

fn encode_history((at, id): (NaiveDateTime, i64)) -> String {
    paging::encode(&[at.and_utc().timestamp_micros().to_string(), id.to_string()])
}

fn decode_history(cursor: &str) -> Result<(NaiveDateTime, i64), ApiError> {
    match paging::decode(cursor)?.as_slice() {
        [at, id] => {
            let micros: i64 = at.parse().map_err(|_| paging::bad_cursor())?;
            let at = chrono::DateTime::from_timestamp_micros(micros)
                .ok_or_else(paging::bad_cursor)?
                .naive_utc();
            Ok((at, id.parse().map_err(|_| paging::bad_cursor())?))
        }
        _ => Err(paging::bad_cursor()),
    }
}

/// The contact's conversations the caller may see, across open, closed and archived,
/// newest first; spam too for admins (it stays in the contact's history for them).
pub fn history(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ContactId,
    query: &wire::PageQuery,
) -> Result<wire::ConversationPage, ApiError> {
    let limit = paging::limit(query.limit)?;
    let after = query.cursor.as_deref().map(decode_history).transpose()?;
    found(conn, actor, id)?;
    let scope = visibility::scope(conn, actor)?;
    let with_spam = actor.role == Role::Admin;
    let (items, next) =
        conversation_list::history(conn, &scope, actor.org_id, id, with_spam, after, limit)?;
    Ok(wire::ConversationPage {
        items: present::conversations(conn, actor.org_id, Some(actor.user_id), items, None)?,
        next_cursor: next.map(encode_history),
    })
}

pub fn activity(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ContactId,
    query: &wire::PageQuery,
) -> Result<wire::ActivityPage, ApiError> {
    let limit = paging::limit(query.limit)?;
    let after = paging::after_id(query.cursor.as_deref())?;
    found(conn, actor, id)?;
    let page = contacts::activity_page(conn, actor.org_id, id, after, limit)?;
    Ok(present::activity_page(page))
}

/// Folds `other` into `keep`: its numbers, conversations, favorites and opt-out move over,
/// and it is deleted. Both contacts are locked (in id order, so two merges of one pair
/// cannot deadlock), then each of the other's conversations (the same lock every
/// conversation change takes).
pub fn merge(
    conn: &mut DbConnection,
    actor: &Actor,
    keep: ContactId,
    other: ContactId,
    outbox: &mut Outbox,
) -> Result<wire::Contact, ApiError> {
    policy::may_curate_contacts(actor)?;
    if keep == other {
        return Err(
            DomainError::invalid("other_id", "a contact cannot be merged into itself").into(),
        );
    }
    let (first, second) = if keep < other {
        (keep, other)
    } else {
        (other, keep)
    };
    // Locked in id order (two merges of the same pair cannot deadlock); a missing contact is
    // answered for its role whichever was locked first: the path's is 404, the body's 422.
    let missing = |id: ContactId| -> ApiError {
        if id == keep {
            ApiError::not_found()
        } else {
            DomainError::invalid("other_id", "no such contact").into()
        }
    };
    let first = contacts::lock(conn, actor.org_id, first)?.ok_or_else(|| missing(first))?;
    let second = contacts::lock(conn, actor.org_id, second)?.ok_or_else(|| missing(second))?;
    let (kept, merged_in) = if first.id == keep {
        (first, second)
    } else {
        (second, first)
    };
    let moving = conversations::lock_of_contact(conn, actor.org_id, other)?;
    let staying = conversations::lock_of_contact(conn, actor.org_id, keep)?;
    rules::ensure_mergeable(
        &moving
            .iter()
            .map(|locked| locked.current())
            .collect::<Vec<_>>(),
        &staying
            .iter()
            .map(|locked| locked.current())
            .collect::<Vec<_>>(),
    )?;
    let (fields, opted_out) = rules::merged(
        &fields_of(&kept),
        kept.opted_out_sms,
        &fields_of(&merged_in),
        merged_in.opted_out_sms,
    );
    let mut moved = Vec::with_capacity(moving.len());
    for mut conversation in moving {
        moved.push(conversations::set_contact(conn, &mut conversation, keep)?);
    }
    let contact = contacts::merge(conn, actor.org_id, keep, other, &fields, opted_out)?;
    record(
        conn,
        actor,
        keep,
        "merged",
        json!({
            "other_id": other.get(),
            "other_name": merged_in.name,
            "phone_numbers": merged_in.phone_numbers,
            "conversations": moved.len(),
        }),
    )?;
    announce(outbox, &contact)?;
    for item in present::conversations(conn, actor.org_id, None, moved, None)? {
        outbox.conversation(EventType::ConversationUpdated, &item)?;
    }
    show(conn, actor, contact)
}
