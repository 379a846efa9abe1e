//! Channels: the numbers and accounts through which customers write to an inbox.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use domain::{Channel, ChannelId, ChannelProvider, ChannelType, InboxId, OrgId};

use super::parse_enum;
use crate::schema::channels;
use crate::{DbConnection, StoreError, from_db, now, to_db};

type ChannelRow = (
    i64,
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    NaiveDateTime,
);

const CHANNEL_COLUMNS: (
    channels::id,
    channels::org_id,
    channels::inbox_id,
    channels::type_,
    channels::address,
    channels::name,
    channels::appended_message,
    channels::outbound_url,
    channels::provider,
    channels::widget_token,
    channels::created_at,
) = (
    channels::id,
    channels::org_id,
    channels::inbox_id,
    channels::type_,
    channels::address,
    channels::name,
    channels::appended_message,
    channels::outbound_url,
    channels::provider,
    channels::widget_token,
    channels::created_at,
);

fn to_channel(row: ChannelRow) -> Result<Channel, StoreError> {
    let (
        id,
        org_id,
        inbox_id,
        channel_type,
        address,
        name,
        appended_message,
        outbound_url,
        provider,
        widget_token,
        created_at,
    ) = row;
    Ok(Channel {
        id: ChannelId(id),
        org_id: OrgId(org_id),
        inbox_id: InboxId(inbox_id),
        channel_type: parse_enum(&channel_type, ChannelType::parse, "channel type")?,
        address,
        name,
        appended_message,
        outbound_url,
        provider: parse_enum(&provider, ChannelProvider::parse, "channel provider")?,
        widget_token,
        created_at: from_db(created_at),
    })
}

pub struct NewChannel<'a> {
    pub org_id: OrgId,
    pub inbox_id: InboxId,
    pub channel_type: ChannelType,
    pub address: &'a str,
    pub name: &'a str,
    pub appended_message: Option<&'a str>,
    pub outbound_url: Option<&'a str>,
    pub inbound_secret: &'a str,
    pub provider: ChannelProvider,
    /// The provider's secrets, sealed by the caller (this layer never sees them in clear).
    pub credentials: Option<&'a str>,
    pub widget_token: Option<&'a str>,
}

/// What authenticates a channel's calls and its sends: the webhook's inbound secret and
/// the provider's sealed credentials.
#[derive(Clone)]
pub struct ChannelSecrets {
    pub inbound_secret: String,
    pub credentials: Option<String>,
}

/// Never printed.
impl std::fmt::Debug for ChannelSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelSecrets(***)")
    }
}

pub fn insert(conn: &mut DbConnection, new: NewChannel<'_>) -> Result<Channel, StoreError> {
    let row: ChannelRow = diesel::insert_into(channels::table)
        .values((
            channels::org_id.eq(new.org_id.get()),
            channels::inbox_id.eq(new.inbox_id.get()),
            channels::type_.eq(new.channel_type.as_str()),
            channels::address.eq(new.address),
            channels::name.eq(new.name),
            channels::appended_message.eq(new.appended_message),
            channels::outbound_url.eq(new.outbound_url),
            channels::inbound_secret.eq(new.inbound_secret),
            channels::provider.eq(new.provider.as_str()),
            channels::credentials.eq(new.credentials),
            channels::widget_token.eq(new.widget_token),
            channels::created_at.eq(to_db(now())),
        ))
        .returning(CHANNEL_COLUMNS)
        .get_result(conn)?;
    to_channel(row)
}

pub fn list_for_inbox(conn: &mut DbConnection, inbox: InboxId) -> Result<Vec<Channel>, StoreError> {
    channels::table
        .filter(channels::inbox_id.eq(inbox.get()))
        .order(channels::id)
        .select(CHANNEL_COLUMNS)
        .load::<ChannelRow>(conn)?
        .into_iter()
        .map(to_channel)
        .collect()
}

pub fn get(
    conn: &mut DbConnection,
    org: OrgId,
    id: ChannelId,
) -> Result<Option<Channel>, StoreError> {
    channels::table
        .filter(
            channels::id
                .eq(id.get())
                .and(channels::org_id.eq(org.get())),
        )
        .select(CHANNEL_COLUMNS)
        .first::<ChannelRow>(conn)
        .optional()?
        .map(to_channel)
        .transpose()
}

/// The channel and its secrets, for checking a signed channel call or sending (no tenant
/// yet: the signature is what authenticates the caller).
pub fn get_with_secret(
    conn: &mut DbConnection,
    id: ChannelId,
) -> Result<Option<(Channel, ChannelSecrets)>, StoreError> {
    let row: Option<(ChannelRow, String, Option<String>)> = channels::table
        .find(id.get())
        .select((
            CHANNEL_COLUMNS,
            channels::inbound_secret,
            channels::credentials,
        ))
        .first(conn)
        .optional()?;
    row.map(|(channel, inbound_secret, credentials)| {
        Ok((
            to_channel(channel)?,
            ChannelSecrets {
                inbound_secret,
                credentials,
            },
        ))
    })
    .transpose()
}

/// The web chat channel a widget token names, with its (sealed) settings.
pub fn find_by_widget_token(
    conn: &mut DbConnection,
    token: &str,
) -> Result<Option<(Channel, Option<String>)>, StoreError> {
    let row: Option<(ChannelRow, Option<String>)> = channels::table
        .filter(channels::widget_token.eq(token))
        .select((CHANNEL_COLUMNS, channels::credentials))
        .first(conn)
        .optional()?;
    row.map(|(channel, credentials)| Ok((to_channel(channel)?, credentials)))
        .transpose()
}

/// The organization's channel of this type at this address, if any.
pub fn find_by_address(
    conn: &mut DbConnection,
    org: OrgId,
    channel_type: ChannelType,
    address: &str,
) -> Result<Option<Channel>, StoreError> {
    channels::table
        .filter(channels::org_id.eq(org.get()))
        .filter(channels::type_.eq(channel_type.as_str()))
        .filter(channels::address.eq(address))
        .select(CHANNEL_COLUMNS)
        .first::<ChannelRow>(conn)
        .optional()?
        .map(to_channel)
        .transpose()
}

/// Gives an existing channel (a private texting number) to another inbox, with the new
/// settings and a new inbound secret: the provider must be told the new secret anyway.
pub fn rehome(
    conn: &mut DbConnection,
    id: ChannelId,
    new: NewChannel<'_>,
) -> Result<Channel, StoreError> {
    let row: ChannelRow = diesel::update(channels::table.find(id.get()))
        .set((
            channels::inbox_id.eq(new.inbox_id.get()),
            channels::name.eq(new.name),
            channels::appended_message.eq(new.appended_message),
            channels::outbound_url.eq(new.outbound_url),
            channels::inbound_secret.eq(new.inbound_secret),
            channels::provider.eq(new.provider.as_str()),
            channels::credentials.eq(new.credentials),
            channels::widget_token.eq(new.widget_token),
        ))
        .returning(CHANNEL_COLUMNS)
        .get_result(conn)?;
    to_channel(row)
}
