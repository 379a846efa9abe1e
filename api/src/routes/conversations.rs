//! Conversations: the list and its counts, one conversation, and what agents do to it.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use domain::{ContactId, ConversationId, InboxId, TeamId, UserId};
use openapi::ErrorCode;
use openapi::{
    ActivityPage, AssignRequest, BulkAction, BulkFailure, BulkRequest, BulkResult, CloseRequest,
    Conversation, ConversationCounts, ConversationPage, ConversationQuery, CreateConversation,
    LinkContactRequest, Message, MessagePage, MessageQuery, MoveRequest, PinRequest, Problem,
    SendMessage,
};
use persistence::repo::conversation_list::{self, AssigneeFilter, Filter, Position, Sort, Tab};
use persistence::repo::{activity, messages, tags};

use crate::auth::Caller;
use crate::body::{Json, OptionalJson};
use crate::error::ApiError;
use crate::service::events::{self, Logged, Outbox};
use crate::service::idempotency::{self, Key};
use crate::service::messaging::{self, Outgoing};
use crate::service::{conversations, present, visibility};
use crate::state::AppState;
use crate::{db, paging};

const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
const MAX_BULK: usize = domain::validate::limits::BULK;

fn filter_from(caller: &Caller, query: &ConversationQuery) -> Filter {
    use openapi::{AssigneeFilter as A, ListStatus as S};
    Filter {
        org: Some(caller.org()),
        tab: Some(match query.status {
            None | Some(S::Open) => Tab::Open,
            Some(S::Closed) => Tab::Closed,
            Some(S::Archived) => Tab::Archived,
        }),
        inbox_id: query.inbox_id.map(InboxId),
        channel_id: query.channel_id.map(domain::ChannelId),
        assignee: query.assignee.map(|assignee| match assignee {
            A::Me => AssigneeFilter::Me,
            A::Others => AssigneeFilter::Others,
            A::Unassigned => AssigneeFilter::Unassigned,
        }),
        participant_me: query.participant.is_some(),
        unread_only: query.unread == Some(true),
        tag: None,
        contact_id: query.contact_id.map(ContactId),
        q: query.q.clone().filter(|q| !q.trim().is_empty()),
    }
}

/// Turns the `tag` name into the filter's tag id; `false` when no such tag exists (then
/// nothing can match).
fn resolve_tag(
    conn: &mut persistence::DbConnection,
    actor: &domain::Actor,
    name: Option<&str>,
    filter: &mut Filter,
) -> Result<bool, ApiError> {
    let Some(name) = name else { return Ok(true) };
    match tags::find_by_name(conn, actor.org_id, name)? {
        Some(tag) => {
            filter.tag = Some(tag.id);
            Ok(true)
        }
        None => Ok(false),
    }
}

fn encode_position(position: Position) -> String {
    let parts = match position {
        Position::Pinned { position, id } => vec!["p".into(), position.to_string(), id.to_string()],
        Position::Empty { id } => vec!["e".into(), id.to_string()],
        Position::Rest { at, id } => vec![
            "r".into(),
            at.and_utc().timestamp_micros().to_string(),
            id.to_string(),
        ],
    };
    paging::encode(&parts)
}

fn decode_position(cursor: &str) -> Result<Position, ApiError> {
    let bad =
        || ApiError::BadRequest("cursor is not valid; pass next_cursor as it was returned".into());
    let parts = paging::decode(cursor)?;
    let number = |text: &String| text.parse::<i64>().map_err(|_| bad());
    match parts.as_slice() {
        [kind, position, id] if kind == "p" => Ok(Position::Pinned {
            position: i32::try_from(number(position)?).map_err(|_| bad())?,
            id: number(id)?,
        }),
        [kind, id] if kind == "e" => Ok(Position::Empty { id: number(id)? }),
        [kind, at, id] if kind == "r" => {
            let at = chrono::DateTime::from_timestamp_micros(number(at)?)
                .ok_or_else(bad)?
                .naive_utc();
            Ok(Position::Rest {
                at,
                id: number(id)?,
            })
        }
        _ => Err(bad()),
    }
}

/// The conversations the caller may see, filtered and sorted; pinned ones first.
#[utoipa::path(
    tag = "conversations",
    operation_id = "list_conversations",
    security(("bearer" = [])),
    params(ConversationQuery),
    responses((status = 200, body = ConversationPage), (status = 400, body = Problem), (status = 401, body = Problem))
)]
#[get("/v1/conversations")]
pub async fn list_conversations(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ConversationQuery>,
) -> Result<web::Json<ConversationPage>, ApiError> {
    use openapi::ConversationSort as S;
    let query = query.into_inner();
    let limit = paging::limit(query.limit)?;
    let after = query.cursor.as_deref().map(decode_position).transpose()?;
    let sort = match query.sort {
        None | Some(S::RecentMessages) => Sort::RecentMessages,
        Some(S::OldestMessages) => Sort::OldestMessages,
        Some(S::RecentConversations) => Sort::RecentConversations,
        Some(S::OldestConversations) => Sort::OldestConversations,
    };
    let mut filter = filter_from(&caller, &query);
    let actor = caller.actor();
    let page = db::read(&state.store, move |conn| {
        if !resolve_tag(conn, &actor, query.tag.as_deref(), &mut filter)? {
            return Ok(ConversationPage {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let scope = visibility::scope(conn, &actor)?;
        let page = conversation_list::list(conn, &scope, &filter, sort, after, limit)?;
        let items = present::conversations(
            conn,
            actor.org_id,
            Some(actor.user_id),
            page.items,
            Some(page.pins),
        )?;
        Ok(ConversationPage {
            items,
            next_cursor: page.next.map(encode_position),
        })
    })
    .await?;
    Ok(web::Json(page))
}

/// How many conversations each tab and assignee filter holds, with the same filters.
#[utoipa::path(
    tag = "conversations",
    operation_id = "count_conversations",
    security(("bearer" = [])),
    params(ConversationQuery),
    responses((status = 200, body = ConversationCounts), (status = 400, body = Problem))
)]
#[get("/v1/conversations/counts")]
pub async fn count_conversations(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ConversationQuery>,
) -> Result<web::Json<ConversationCounts>, ApiError> {
    let query = query.into_inner();
    // The list's query string is taken as it is (clients send one for both), and checked
    // as the list checks it.
    paging::limit(query.limit)?;
    if let Some(cursor) = &query.cursor {
        paging::decode(cursor)?;
    }
    let mut filter = filter_from(&caller, &query);
    let actor = caller.actor();
    let counts = db::read(&state.store, move |conn| {
        if !resolve_tag(conn, &actor, query.tag.as_deref(), &mut filter)? {
            return Ok(conversation_list::Counts::default());
        }
        let scope = visibility::scope(conn, &actor)?;
        Ok(conversation_list::counts(conn, &scope, &filter)?)
    })
    .await?;
    Ok(web::Json(ConversationCounts {
        open: counts.open,
        closed: counts.closed,
        archived: counts.archived,
        unread: counts.unread,
        mine: counts.mine,
        unassigned: counts.unassigned,
        others: counts.others,
    }))
}

/// The `Idempotency-Key` header, if sent; one that is not visible ASCII is refused rather
/// than ignored (ignoring it would run a retried request twice).
fn idempotency_header(request: &HttpRequest) -> Result<Option<String>, ApiError> {
    request
        .headers()
        .get(IDEMPOTENCY_KEY)
        .map(|value| {
            value.to_str().map(str::to_string).map_err(|_| {
                ApiError::BadRequest("the Idempotency-Key header must be visible ASCII".into())
            })
        })
        .transpose()
}

/// Runs an idempotent creation: replays the stored result for a repeated key, otherwise
/// does the work and stores its result in the same transaction. A concurrent twin that
/// committed first is answered from its stored result.
async fn idempotent<T, F>(
    state: &web::Data<AppState>,
    caller: &Caller,
    key: Option<Key>,
    work: F,
) -> Result<T, ApiError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    F: Fn(&mut persistence::DbConnection, &mut Outbox) -> Result<T, ApiError>
        + Send
        + Clone
        + 'static,
{
    let user = caller.user.id;
    let attempt = {
        let (key, work) = (key.clone(), work.clone());
        db::write(&state.store, move |conn| {
            if let Some(key) = &key
                && let Some(previous) = idempotency::replay::<T>(conn, user, key)?
            {
                return Ok((previous, Logged::default()));
            }
            let mut outbox = Outbox::new();
            let result = work(conn, &mut outbox)?;
            if let Some(key) = &key {
                idempotency::remember(conn, user, key, &result)?;
            }
            Ok((result, outbox.flush(conn)?))
        })
        .await
    };
    match (attempt, key) {
        (Ok((result, logged)), _) => {
            logged.publish(state);
            Ok(result)
        }
        (
            Err(ApiError::Conflict {
                code: ErrorCode::Duplicate,
                ..
            }),
            Some(key),
        ) => {
            db::read(&state.store, move |conn| {
                idempotency::replay::<T>(conn, user, &key)?.ok_or_else(|| ApiError::Conflict {
                    code: ErrorCode::Duplicate,
                    detail: "a concurrent request conflicted; retry".into(),
                })
            })
            .await
        }
        (Err(error), _) => Err(error),
    }
}

/// Starts a conversation from the business (not on WhatsApp). Honours `Idempotency-Key`.
#[utoipa::path(
    tag = "conversations",
    operation_id = "create_conversation",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first result")),
    request_body = CreateConversation,
    responses(
        (status = 201, body = Conversation),
        (status = 422, description = "`validation_failed`, `channel_cannot_initiate`, `contact_opted_out`, `attachment_not_allowed_on_channel`", body = Problem),
    )
)]
#[post("/v1/conversations")]
pub async fn create_conversation(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    body: Json<CreateConversation>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let key = Key::new(
        idempotency_header(&request)?.as_deref(),
        "create_conversation",
        &body,
    )?;
    let actor = caller.actor();
    let created = idempotent(&state, &caller, key, move |conn, outbox| {
        messaging::start(conn, &actor, body.clone(), outbox)
    })
    .await?;
    // Committed: the delivery worker may send the queued message now.
    state.deliveries.notify_one();
    Ok(HttpResponse::Created().json(created))
}

#[utoipa::path(
    tag = "conversations",
    operation_id = "get_conversation",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Conversation), (status = 404, description = "Unknown, another organization's, or not visible to the caller", body = Problem))
)]
#[get("/v1/conversations/{id}")]
pub async fn get_conversation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<web::Json<Conversation>, ApiError> {
    let (actor, id) = (caller.actor(), ConversationId(path.into_inner()));
    let item = db::read(&state.store, move |conn| {
        let found = visibility::visible(conn, &actor, id)?;
        present::one(conn, actor.org_id, Some(actor.user_id), found.conversation)
    })
    .await?;
    Ok(web::Json(item))
}

/// Assigns the conversation (or unassigns it with `assignee_id: null`).
#[utoipa::path(
    tag = "conversations",
    operation_id = "assign_conversation",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = AssignRequest,
    responses(
        (status = 200, body = Conversation),
        (status = 403, description = "An agent assigning someone else", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "`conversation_changed`: an agent's claim lost the race; a colleague took the conversation a moment earlier", body = Problem),
        (status = 422, description = "`assignment_disabled`, `assignee_not_member`, `assignee_not_in_team`, `conversation_closed`, `validation_failed` (an unknown or inactive assignee)", body = Problem),
    )
)]
#[post("/v1/conversations/{id}/assign")]
pub async fn assign_conversation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: Json<AssignRequest>,
) -> Result<web::Json<Conversation>, ApiError> {
    let (actor, id) = (caller.actor(), ConversationId(path.into_inner()));
    let body = body.into_inner();
    let item = events::write(&state, move |conn, outbox| {
        conversations::assign(
            conn,
            &actor,
            id,
            body.assignee_id.map(UserId),
            body.team_id.map(TeamId),
            outbox,
        )
    })
    .await?;
    Ok(web::Json(item))
}

/// Closes the conversation; closed is final. `spam: true` hides it from every list.
#[utoipa::path(
    tag = "conversations",
    operation_id = "close_conversation",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body(content = Option<CloseRequest>, description = "Optional; a body that is sent must parse"),
    responses((status = 200, body = Conversation), (status = 400, description = "`bad_request`: a body that does not parse", body = Problem), (status = 404, body = Problem), (status = 422, description = "`conversation_closed`", body = Problem))
)]
#[post("/v1/conversations/{id}/close")]
pub async fn close_conversation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: OptionalJson<CloseRequest>,
) -> Result<web::Json<Conversation>, ApiError> {
    let (actor, id) = (caller.actor(), ConversationId(path.into_inner()));
    let spam = body.0.is_some_and(|body| body.spam);
    let item = events::write(&state, move |conn, outbox| {
        conversations::close(conn, &actor, id, spam, outbox)
    })
    .await?;
    Ok(web::Json(item))
}

/// Moves the conversation to another inbox.
#[utoipa::path(
    tag = "conversations",
    operation_id = "move_conversation",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = MoveRequest,
    responses((status = 200, body = Conversation), (status = 404, body = Problem), (status = 422, description = "`move_disabled`, `conversation_closed`, `validation_failed`", body = Problem))
)]
#[post("/v1/conversations/{id}/move")]
pub async fn move_conversation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: Json<MoveRequest>,
) -> Result<web::Json<Conversation>, ApiError> {
    let (actor, id, target) = (
        caller.actor(),
        ConversationId(path.into_inner()),
        InboxId(body.inbox_id),
    );
    let item = events::write(&state, move |conn, outbox| {
        conversations::move_to(conn, &actor, id, target, outbox)
    })
    .await?;
    Ok(web::Json(item))
}

/// Marks the conversation read for the caller (nobody else's view changes).
#[utoipa::path(tag = "conversations", operation_id = "read_conversation", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 204, description = "Read"), (status = 404, body = Problem)))]
#[post("/v1/conversations/{id}/read")]
pub async fn read_conversation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (actor, id) = (caller.actor(), ConversationId(path.into_inner()));
    db::write(&state.store, move |conn| {
        conversations::set_read(conn, &actor, id, true)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Marks the conversation unread for the caller.
#[utoipa::path(tag = "conversations", operation_id = "unread_conversation", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 204, description = "Unread"), (status = 404, body = Problem)))]
#[post("/v1/conversations/{id}/unread")]
pub async fn unread_conversation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (actor, id) = (caller.actor(), ConversationId(path.into_inner()));
    db::write(&state.store, move |conn| {
        conversations::set_read(conn, &actor, id, false)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Pins the conversation to the top of the caller's list.
#[utoipa::path(
    tag = "conversations",
    operation_id = "pin_conversation",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body(content = Option<PinRequest>, description = "Optional; a body that is sent must parse"),
    responses((status = 200, body = Conversation), (status = 400, description = "`bad_request`: a body that does not parse", body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
#[put("/v1/conversations/{id}/pin")]
pub async fn pin_conversation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: OptionalJson<PinRequest>,
) -> Result<web::Json<Conversation>, ApiError> {
    let (actor, id) = (caller.actor(), ConversationId(path.into_inner()));
    let position = body.0.and_then(|body| body.position);
    let item = db::write(&state.store, move |conn| {
        conversations::pin(conn, &actor, id, position)
    })
    .await?;
    Ok(web::Json(item))
}

#[utoipa::path(tag = "conversations", operation_id = "unpin_conversation", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = Conversation), (status = 404, body = Problem)))]
#[delete("/v1/conversations/{id}/pin")]
pub async fn unpin_conversation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<web::Json<Conversation>, ApiError> {
    let (actor, id) = (caller.actor(), ConversationId(path.into_inner()));
    let item = db::write(&state.store, move |conn| {
        conversations::unpin(conn, &actor, id)
    })
    .await?;
    Ok(web::Json(item))
}

/// Tags the conversation with an existing tag (idempotent).
#[utoipa::path(
    tag = "conversations",
    operation_id = "tag_conversation",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("tag_name" = String, Path)),
    responses((status = 200, body = Conversation), (status = 404, description = "Unknown conversation or tag", body = Problem), (status = 422, description = "`validation_failed`, `conversation_closed`", body = Problem))
)]
#[put("/v1/conversations/{id}/tags/{tag_name}")]
pub async fn tag_conversation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(i64, String)>,
) -> Result<web::Json<Conversation>, ApiError> {
    let (id, name) = path.into_inner();
    let (actor, id) = (caller.actor(), ConversationId(id));
    let item = events::write(&state, move |conn, outbox| {
        conversations::set_tag(conn, &actor, id, &name, true, outbox)
    })
    .await?;
    Ok(web::Json(item))
}

#[utoipa::path(
    tag = "conversations",
    operation_id = "untag_conversation",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("tag_name" = String, Path)),
    responses((status = 200, body = Conversation), (status = 404, body = Problem), (status = 422, description = "`validation_failed`, `conversation_closed`", body = Problem))
)]
#[delete("/v1/conversations/{id}/tags/{tag_name}")]
pub async fn untag_conversation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(i64, String)>,
) -> Result<web::Json<Conversation>, ApiError> {
    let (id, name) = path.into_inner();
    let (actor, id) = (caller.actor(), ConversationId(id));
    let item = events::write(&state, move |conn, outbox| {
        conversations::set_tag(conn, &actor, id, &name, false, outbox)
    })
    .await?;
    Ok(web::Json(item))
}

/// Links the conversation to a contact (e.g. a known customer writing from a new number).
#[utoipa::path(
    tag = "conversations",
    operation_id = "link_conversation_contact",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = LinkContactRequest,
    responses((status = 200, body = Conversation), (status = 404, body = Problem), (status = 422, body = Problem))
)]
#[put("/v1/conversations/{id}/contact")]
pub async fn link_conversation_contact(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: Json<LinkContactRequest>,
) -> Result<web::Json<Conversation>, ApiError> {
    let (actor, id, contact) = (
        caller.actor(),
        ConversationId(path.into_inner()),
        ContactId(body.contact_id),
    );
    let item = events::write(&state, move |conn, outbox| {
        conversations::link_contact(conn, &actor, id, contact, outbox)
    })
    .await?;
    Ok(web::Json(item))
}

/// Closes, assigns or tags many conversations; each succeeds or fails on its own.
#[utoipa::path(
    tag = "conversations",
    operation_id = "bulk_conversations",
    security(("bearer" = [])),
    request_body = BulkRequest,
    responses((status = 200, body = BulkResult), (status = 403, description = "Agents may not act in bulk", body = Problem), (status = 422, body = Problem))
)]
#[post("/v1/conversations/bulk")]
pub async fn bulk_conversations(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<BulkRequest>,
) -> Result<web::Json<BulkResult>, ApiError> {
    let actor = caller.actor();
    domain::conversation::may_act_in_bulk(&actor)?;
    let body = body.into_inner();
    if body.ids.is_empty() || body.ids.len() > MAX_BULK {
        return Err(ApiError::invalid(
            "ids",
            "give between 1 and 100 conversation ids",
        ));
    }
    if body.action == BulkAction::Tag && body.tag.as_deref().is_none_or(|tag| tag.trim().is_empty())
    {
        return Err(ApiError::invalid("tag", "the tag action needs a tag"));
    }
    let mut result = BulkResult {
        done: Vec::new(),
        failed: Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    for raw in body.ids {
        if !seen.insert(raw) {
            continue;
        }
        let id = ConversationId(raw);
        let (action, assignee, tag) = (
            body.action,
            body.assignee_id.map(UserId),
            body.tag.clone().unwrap_or_default(),
        );
        // Each conversation in its own transaction: one refusal does not undo the others.
        let outcome = events::write(&state, move |conn, outbox| match action {
            BulkAction::Close => conversations::close(conn, &actor, id, false, outbox).map(drop),
            BulkAction::Assign => {
                conversations::assign(conn, &actor, id, assignee, None, outbox).map(drop)
            }
            BulkAction::Tag => {
                conversations::set_tag(conn, &actor, id, &tag, true, outbox).map(drop)
            }
        })
        .await;
        match outcome {
            Ok(()) => result.done.push(raw),
            Err(error) => result.failed.push(BulkFailure {
                id: raw,
                code: error.problem().code,
            }),
        }
    }
    Ok(web::Json(result))
}

/// The conversation's messages, newest first.
#[utoipa::path(
    tag = "conversations",
    operation_id = "list_messages",
    security(("bearer" = [])),
    params(("id" = i64, Path), MessageQuery),
    responses((status = 200, body = MessagePage), (status = 404, body = Problem))
)]
#[get("/v1/conversations/{id}/messages")]
pub async fn list_messages(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    query: web::Query<MessageQuery>,
) -> Result<web::Json<MessagePage>, ApiError> {
    let (actor, id) = (caller.actor(), ConversationId(path.into_inner()));
    let limit = paging::limit(query.limit)?;
    let before = paging::after_id(query.before.as_deref())?;
    let (items, next_cursor) = db::read(&state.store, move |conn| {
        visibility::visible(conn, &actor, id)?;
        let page = messages::page(conn, actor.org_id, id, before, limit)?;
        let next_cursor = paging::next_id_cursor(
            page.has_more,
            page.items.last().map(|message| message.id.get()),
        );
        Ok((present::messages(conn, page.items)?, next_cursor))
    })
    .await?;
    Ok(web::Json(MessagePage { items, next_cursor }))
}

/// Sends a reply (delivered to the customer) or an internal note. Honours
/// `Idempotency-Key`; with `if_last_message_id`, refuses when a newer message arrived.
#[utoipa::path(
    tag = "conversations",
    operation_id = "send_message",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first result")),
    request_body = SendMessage,
    responses(
        (status = 201, body = Message),
        (status = 404, body = Problem),
        (status = 409, description = "`conversation_changed`: a newer message arrived after `if_last_message_id` (a colleague answered first); `duplicate`: a concurrent retry with the same key", body = Problem),
        (status = 422, description = "`conversation_closed` (also when the send raced a close and lost), `contact_opted_out`, `channel_window_closed` (WhatsApp: the customer last wrote more than 24 hours ago), `validation_failed`, `attachment_not_allowed_on_channel`", body = Problem),
    )
)]
#[post("/v1/conversations/{id}/messages")]
pub async fn send_message(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<i64>,
    body: Json<SendMessage>,
) -> Result<HttpResponse, ApiError> {
    let (actor, id) = (caller.actor(), ConversationId(path.into_inner()));
    let body = body.into_inner();
    let key = Key::new(
        idempotency_header(&request)?.as_deref(),
        &format!("send_message {}", id.get()),
        &body,
    )?;
    let sent: Message = idempotent(&state, &caller, key, move |conn, outbox| {
        let outgoing = Outgoing {
            body: body.body.clone(),
            kind: body.kind,
            attachment_ids: body.attachment_ids.clone(),
            canned_response_id: body.canned_response_id,
            if_last_message_id: body.if_last_message_id,
        };
        messaging::send(conn, &actor, id, outgoing, outbox)
    })
    .await?;
    // Committed: the delivery worker may send the queued message now.
    state.deliveries.notify_one();
    Ok(HttpResponse::Created().json(sent))
}

/// The conversation's audit trail: assignments, moves, tags, closes, with actor and time.
#[utoipa::path(
    tag = "conversations",
    operation_id = "list_conversation_activity",
    security(("bearer" = [])),
    params(("id" = i64, Path), openapi::PageQuery),
    responses((status = 200, body = ActivityPage), (status = 404, body = Problem))
)]
#[get("/v1/conversations/{id}/activity")]
pub async fn list_conversation_activity(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    query: web::Query<openapi::PageQuery>,
) -> Result<web::Json<ActivityPage>, ApiError> {
    let (actor, id) = (caller.actor(), ConversationId(path.into_inner()));
    let limit = paging::limit(query.limit)?;
    let after = paging::after_id(query.cursor.as_deref())?;
    let page = db::read(&state.store, move |conn| {
        visibility::visible(conn, &actor, id)?;
        Ok(activity::page(conn, actor.org_id, id, after, limit)?)
    })
    .await?;
    Ok(web::Json(present::activity_page(page)))
}
