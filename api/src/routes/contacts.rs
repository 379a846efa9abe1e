//! Contacts: the team's customer directory (API.md, Contacts).

use std::io::Read;

use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use domain::{ContactId, policy};
use futures_util::StreamExt;
use openapi::{
    ActivityPage, Contact, ContactPage, ContactQuery, ConversationPage, CreateContact,
    ImportResult, MergeContacts, PageQuery, Problem, SetOptOut, UpdateContact,
};
use persistence::repo::contacts as stored;

use crate::auth::Caller;
use crate::body::Json;
use crate::db;
use crate::error::ApiError;
use crate::service::{contacts, contacts_csv, events};
use crate::state::AppState;

/// The directory, by name; `q` searches names, phone numbers (any format), e-mails and
/// companies; `favorite=true` keeps the caller's favorites.
#[utoipa::path(
    tag = "contacts",
    operation_id = "list_contacts",
    security(("bearer" = [])),
    params(ContactQuery),
    responses((status = 200, body = ContactPage), (status = 400, body = Problem), (status = 401, body = Problem))
)]
#[get("/v1/contacts")]
pub async fn list_contacts(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ContactQuery>,
) -> Result<web::Json<ContactPage>, ApiError> {
    let actor = caller.actor();
    let query = query.into_inner();
    let page = db::read(&state.store, move |conn| {
        contacts::list(conn, &actor, &query)
    })
    .await?;
    Ok(web::Json(page))
}

#[utoipa::path(
    tag = "contacts",
    operation_id = "create_contact",
    security(("bearer" = [])),
    request_body = CreateContact,
    responses(
        (status = 201, body = Contact),
        (status = 400, body = Problem),
        (status = 409, description = "`duplicate`: a phone number belongs to another contact", body = Problem),
        (status = 422, description = "`validation_failed`", body = Problem),
    )
)]
#[post("/v1/contacts")]
pub async fn create_contact(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CreateContact>,
) -> Result<HttpResponse, ApiError> {
    let (actor, body) = (caller.actor(), body.into_inner());
    let contact = events::write(&state, move |conn, outbox| {
        contacts::create(conn, &actor, &body, outbox)
    })
    .await?;
    Ok(HttpResponse::Created().json(contact))
}

/// Every contact as CSV (`name,phone_numbers,email,company,notes`; numbers separated by
/// `;`), streamed; cells a spreadsheet would run as formulas start with `'`. Admins and
/// managers.
#[utoipa::path(
    tag = "contacts",
    operation_id = "export_contacts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The directory as CSV", content_type = "text/csv", body = String),
        (status = 403, body = Problem),
    )
)]
#[get("/v1/contacts/export")]
pub async fn export_contacts(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    policy::may_curate_contacts(&actor)?;
    let header = futures_util::stream::once(async {
        Ok::<_, ApiError>(Bytes::from(contacts_csv::header()))
    });
    let pages = futures_util::stream::unfold(Some(0i64), move |after| {
        let state = state.clone();
        async move {
            let after = after?;
            let page = db::read(&state.store, move |conn| {
                let page =
                    stored::by_id_after(conn, actor.org_id, after, contacts_csv::EXPORT_PAGE)?;
                let next = (page.len() as i64 == contacts_csv::EXPORT_PAGE)
                    .then(|| page.last().map(|contact| contact.id.get()))
                    .flatten();
                Ok((contacts_csv::rows(&page)?, next))
            })
            .await;
            match page {
                Ok((bytes, next)) => Some((Ok(Bytes::from(bytes)), next)),
                // The status is sent already: the stream ends with the error (logged).
                Err(error) => Some((Err(error), None)),
            }
        }
    });
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((CONTENT_DISPOSITION, "attachment; filename=\"contacts.csv\""))
        .streaming(header.chain(pages)))
}

/// Reads an upload's chunks on a blocking thread, as they arrive.
struct Upload {
    chunks: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl Read for Upload {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.split_off(n);
        Ok(n)
    }
}

/// Imports contacts from CSV with a header row (`name`, `phone_numbers` separated by `;`,
/// `email`, `company`, `notes`, in any order): a row whose phone number (or else e-mail)
/// matches a contact updates it, others create one; bad rows are reported by row and the
/// good ones kept. Admins and managers.
#[utoipa::path(
    tag = "contacts",
    operation_id = "import_contacts",
    security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv", description = "CSV with a header row"),
    responses(
        (status = 200, body = ImportResult),
        (status = 400, description = "`bad_request`: not CSV, or an unknown or missing column", body = Problem),
        (status = 403, body = Problem),
        (status = 413, body = Problem),
        (status = 415, body = Problem),
        (status = 422, description = "`validation_failed`: too many rows", body = Problem),
    )
)]
#[post("/v1/contacts/import")]
pub async fn import_contacts(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    mut payload: web::Payload,
) -> Result<web::Json<ImportResult>, ApiError> {
    let actor = caller.actor();
    policy::may_curate_contacts(&actor)?;
    let is_csv = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let value = value.to_ascii_lowercase();
            value.starts_with("text/csv") || value.starts_with("application/csv")
        });
    if !is_csv {
        return Err(ApiError::UnsupportedMediaType(
            "send the file as text/csv".into(),
        ));
    }
    let limit = state.config.max_upload;
    let (sender, chunks) = tokio::sync::mpsc::channel(4);
    let worker = {
        let state = state.clone();
        web::block(move || {
            let upload = Upload {
                chunks,
                current: Bytes::new(),
            };
            contacts_csv::import(&state, &actor, upload)
        })
    };
    let feed = async move {
        let mut total = 0usize;
        while let Some(chunk) = payload.next().await {
            let chunk = match chunk {
                Ok(bytes) => {
                    total += bytes.len();
                    if total > limit {
                        Err(std::io::Error::from(std::io::ErrorKind::FileTooLarge))
                    } else {
                        Ok(bytes)
                    }
                }
                Err(error) => Err(std::io::Error::other(error.to_string())),
            };
            let last = chunk.is_err();
            // The import stopped early (a bad header): the rest is not needed.
            if sender.send(chunk).await.is_err() || last {
                break;
            }
        }
    };
    let ((), imported) = futures_util::join!(feed, worker);
    Ok(web::Json(imported??))
}

#[utoipa::path(
    tag = "contacts",
    operation_id = "get_contact",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Contact), (status = 404, body = Problem))
)]
#[get("/v1/contacts/{id}")]
pub async fn get_contact(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<web::Json<Contact>, ApiError> {
    let (actor, id) = (caller.actor(), ContactId(path.into_inner()));
    let contact = db::read(&state.store, move |conn| contacts::get(conn, &actor, id)).await?;
    Ok(web::Json(contact))
}

/// Changes a contact: fields left out stay, `null` clears, `phone_numbers` replaces.
#[utoipa::path(
    tag = "contacts",
    operation_id = "update_contact",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = UpdateContact,
    responses(
        (status = 200, body = Contact),
        (status = 400, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "`duplicate`: a phone number belongs to another contact", body = Problem),
        (status = 422, description = "`validation_failed`", body = Problem),
    )
)]
#[patch("/v1/contacts/{id}")]
pub async fn update_contact(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: Json<UpdateContact>,
) -> Result<web::Json<Contact>, ApiError> {
    let (actor, id, body) = (
        caller.actor(),
        ContactId(path.into_inner()),
        body.into_inner(),
    );
    let contact = events::write(&state, move |conn, outbox| {
        contacts::update(conn, &actor, id, &body, outbox)
    })
    .await?;
    Ok(web::Json(contact))
}

/// Deletes a contact. One with conversations becomes anonymous instead (its history stays;
/// its name, e-mail, company, notes and favorites go; its numbers and opt-out stay, so
/// replies still reach the customer and their consent holds). Admins and managers.
#[utoipa::path(
    tag = "contacts",
    operation_id = "delete_contact",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem))
)]
#[delete("/v1/contacts/{id}")]
pub async fn delete_contact(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (actor, id) = (caller.actor(), ContactId(path.into_inner()));
    events::write(&state, move |conn, outbox| {
        contacts::delete(conn, &actor, id, outbox)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Marks the contact as one of the caller's favorites (each user has their own).
#[utoipa::path(
    tag = "contacts",
    operation_id = "favorite_contact",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Contact), (status = 404, body = Problem))
)]
#[put("/v1/contacts/{id}/favorite")]
pub async fn favorite_contact(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<web::Json<Contact>, ApiError> {
    set_favorite(state, caller, path.into_inner(), true).await
}

#[utoipa::path(
    tag = "contacts",
    operation_id = "unfavorite_contact",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Contact), (status = 404, body = Problem))
)]
#[delete("/v1/contacts/{id}/favorite")]
pub async fn unfavorite_contact(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<web::Json<Contact>, ApiError> {
    set_favorite(state, caller, path.into_inner(), false).await
}

async fn set_favorite(
    state: web::Data<AppState>,
    caller: Caller,
    id: i64,
    favorite: bool,
) -> Result<web::Json<Contact>, ApiError> {
    let (actor, id) = (caller.actor(), ContactId(id));
    let contact = db::write(&state.store, move |conn| {
        contacts::set_favorite(conn, &actor, id, favorite)
    })
    .await?;
    Ok(web::Json(contact))
}

/// Opts the contact out of text messages (a customer who asked by phone), or back in.
/// Recorded in the contact's activity and announced as `contact.updated`.
#[utoipa::path(
    tag = "contacts",
    operation_id = "set_contact_opt_out",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = SetOptOut,
    responses(
        (status = 200, body = Contact),
        (status = 400, body = Problem),
        (status = 404, body = Problem),
    )
)]
#[put("/v1/contacts/{id}/opt-out")]
pub async fn set_contact_opt_out(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: Json<SetOptOut>,
) -> Result<web::Json<Contact>, ApiError> {
    let (actor, id, sms) = (caller.actor(), ContactId(path.into_inner()), body.sms);
    let contact = events::write(&state, move |conn, outbox| {
        contacts::set_opt_out(conn, &actor, id, sms, outbox)
    })
    .await?;
    Ok(web::Json(contact))
}

/// The contact's conversations the caller may see (open, closed and archived), newest
/// first; admins also see those closed as spam.
#[utoipa::path(
    tag = "contacts",
    operation_id = "list_contact_conversations",
    security(("bearer" = [])),
    params(("id" = i64, Path), PageQuery),
    responses((status = 200, body = ConversationPage), (status = 400, body = Problem), (status = 404, body = Problem))
)]
#[get("/v1/contacts/{id}/conversations")]
pub async fn list_contact_conversations(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<ConversationPage>, ApiError> {
    let (actor, id, query) = (
        caller.actor(),
        ContactId(path.into_inner()),
        query.into_inner(),
    );
    let page = db::read(&state.store, move |conn| {
        contacts::history(conn, &actor, id, &query)
    })
    .await?;
    Ok(web::Json(page))
}

/// The contact's trail: created, edits, opt-outs and opt-ins (manual or by keyword),
/// merges, imports, anonymization; oldest first.
#[utoipa::path(
    tag = "contacts",
    operation_id = "list_contact_activity",
    security(("bearer" = [])),
    params(("id" = i64, Path), PageQuery),
    responses((status = 200, body = ActivityPage), (status = 400, body = Problem), (status = 404, body = Problem))
)]
#[get("/v1/contacts/{id}/activity")]
pub async fn list_contact_activity(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<ActivityPage>, ApiError> {
    let (actor, id, query) = (
        caller.actor(),
        ContactId(path.into_inner()),
        query.into_inner(),
    );
    let page = db::read(&state.store, move |conn| {
        contacts::activity(conn, &actor, id, &query)
    })
    .await?;
    Ok(web::Json(page))
}

/// Folds `other_id` into this contact: its numbers, conversations, favorites and opt-out
/// move here, gaps in this contact's fields are filled from it, and it is deleted.
/// Admins and managers.
#[utoipa::path(
    tag = "contacts",
    operation_id = "merge_contacts",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = MergeContacts,
    responses(
        (status = 200, description = "The merged contact", body = Contact),
        (status = 400, body = Problem),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 422, description = "`validation_failed`: the same contact, an unknown `other_id`, or both have an open conversation on one channel", body = Problem),
    )
)]
#[post("/v1/contacts/{id}/merge")]
pub async fn merge_contacts(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: Json<MergeContacts>,
) -> Result<web::Json<Contact>, ApiError> {
    let actor = caller.actor();
    let (keep, other) = (ContactId(path.into_inner()), ContactId(body.other_id));
    let contact = events::write(&state, move |conn, outbox| {
        contacts::merge(conn, &actor, keep, other, outbox)
    })
    .await?;
    Ok(web::Json(contact))
}
