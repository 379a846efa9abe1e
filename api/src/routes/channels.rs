//! Channels of an inbox: the numbers and accounts customers write to.

use actix_web::{HttpResponse, get, post, web};
use domain::error::Validator;
use domain::{ChannelProvider, ChannelType, InboxId, InboxKind, policy, validate};
use openapi::ErrorCode;
use openapi::{Channel, ChannelPage, CreateChannel, CreatedChannel, PageQuery, Problem};
use persistence::repo::channels::{self, NewChannel};
use persistence::repo::{conversations, inboxes};

use super::inboxes::visible_inbox;
use crate::auth::{Caller, random_token};
use crate::body::Json;
use crate::error::{ApiError, on_conflict};
use crate::providers;
use crate::state::AppState;
use crate::{db, paging};

/// The inbox's channels.
#[utoipa::path(
    tag = "channels",
    operation_id = "list_channels",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Inbox id"), PageQuery),
    responses((status = 200, body = ChannelPage), (status = 404, body = Problem))
)]
#[get("/v1/inboxes/{id}/channels")]
pub async fn list_channels(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<ChannelPage>, ApiError> {
    let (actor, id) = (caller.actor(), InboxId(path.into_inner()));
    let list = db::read(&state.store, move |conn| {
        visible_inbox(conn, &actor, id)?;
        Ok(channels::list_for_inbox(conn, id)?)
    })
    .await?;
    let (items, next_cursor) = paging::in_memory(
        list,
        |channel| paging::id_key(channel.id.get()),
        query.limit,
        query.cursor.as_deref(),
    )?;
    Ok(web::Json(ChannelPage {
        items: items
            .into_iter()
            .map(|channel| Channel::present(channel, &state.config.public_base()))
            .collect(),
        next_cursor,
    }))
}

/// Attaches a channel to the inbox: through the generic webhook, or connected to Twilio,
/// Meta or the web chat widget with the provider's `credentials` (write-only: sealed at rest,
/// never returned). The response carries `callback_url`, the URL to paste into the
/// provider's console, and `inbound_secret`, which signs the webhook's calls (shown this
/// once).
#[utoipa::path(
    tag = "channels",
    operation_id = "create_channel",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Inbox id")),
    request_body = CreateChannel,
    responses(
        (status = 201, body = CreatedChannel),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "`duplicate`: this address is already a channel", body = Problem),
        (status = 422, body = Problem),
    )
)]
#[post("/v1/inboxes/{id}/channels")]
pub async fn create_channel(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: Json<CreateChannel>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let channel_type = ChannelType::from(body.channel_type);
    let provider = body
        .provider
        .map_or(ChannelProvider::Webhook, ChannelProvider::from);
    let mut checks = Validator::new();
    if !provider.carries(channel_type) {
        checks.check::<()>(Err(domain::FieldError::new(
            "provider",
            "does not carry this type of channel",
        )));
    }
    let address = checks.check(validate::channel_address(
        "address",
        provider,
        channel_type,
        &body.address,
    ));
    let name = checks.check(validate::text(
        "name",
        &body.name,
        domain::validate::limits::NAME,
    ));
    let appended = match body.appended_message.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => checks.check(validate::optional_text("appended_message", text, 300)),
    };
    let outbound_url = body
        .outbound_url
        .as_deref()
        .and_then(|url| checks.check(validate::outbound_url("outbound_url", url)));
    if outbound_url.is_some() && provider != ChannelProvider::Webhook {
        checks.check::<()>(Err(domain::FieldError::new(
            "outbound_url",
            "only the webhook provider posts to an outbound_url",
        )));
    }
    if let Some(url) = outbound_url.as_deref()
        && let Err(why) = crate::outbound::check_url(&state.config.outbound_allow, url).await
    {
        checks.check::<()>(Err(domain::FieldError::new("outbound_url", why)));
    }
    let credentials = checks
        .check(providers::of(provider).credentials(body.credentials.as_ref()))
        .flatten();
    checks.finish()?;
    let (address, name) = (address.unwrap_or_default(), name.unwrap_or_default());
    let (actor, inbox_id) = (caller.actor(), InboxId(path.into_inner()));
    let sealed = credentials
        .map(|credentials| providers::seal(&state, actor.org_id.get(), &credentials))
        .transpose()?;
    let widget_token = (provider == ChannelProvider::Webchat).then(|| random_token(24));
    let secret = random_token(32);
    let inbound_secret = secret.clone();
    let channel = db::write(&state.store, move |conn| {
        let (inbox, is_member) = visible_inbox(conn, &actor, inbox_id)?;
        policy::may_create_channel(&actor, &inbox, is_member)?;
        let new = NewChannel {
            org_id: actor.org_id,
            inbox_id,
            channel_type,
            address: &address,
            name: &name,
            appended_message: appended.as_deref(),
            outbound_url: outbound_url.as_deref(),
            inbound_secret: &secret,
            provider,
            credentials: sealed.as_deref(),
            widget_token: widget_token.as_deref(),
        };
        // A user's private texting number joining a shared inbox: its history comes along
        // as the inbox's archived, read-only conversations.
        let existing = channels::find_by_address(conn, actor.org_id, channel_type, &address)?;
        if let Some(existing) = existing
            && channel_type == ChannelType::Sms
            && inbox.settings.kind == InboxKind::Shared
        {
            let source = inboxes::get(conn, actor.org_id, existing.inbox_id)?
                .ok_or_else(ApiError::not_found)?;
            if source.settings.kind == InboxKind::Private {
                conversations::archive_into(conn, existing.id, inbox_id)?;
                return Ok(channels::rehome(conn, existing.id, new)?);
            }
        }
        channels::insert(conn, new).map_err(on_conflict(
            ErrorCode::Duplicate,
            "this address is already a channel of this organization",
        ))
    })
    .await?;
    Ok(HttpResponse::Created().json(CreatedChannel {
        channel: Channel::present(channel, &state.config.public_base()),
        inbound_secret,
    }))
}
