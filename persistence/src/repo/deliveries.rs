//! The outbound delivery queue: one row per outbound message that leaves through a
//! channel's `outbound_url`, kept in the database so nothing queued is lost on restart.

use diesel::prelude::*;
use domain::{ChannelId, MessageId, OrgId};

use crate::schema::outbound_deliveries as d;
use crate::{DbConnection, StoreError, now, to_db};

/// Queues the message for delivery, due now.
pub fn enqueue(conn: &mut DbConnection, org: OrgId, message: MessageId, channel: ChannelId) -> Result<(), StoreError> {
    diesel::insert_into(d::table)
        .values((
            d::org_id.eq(org.get()),
            d::message_id.eq(message.get()),
            d::channel_id.eq(channel.get()),
            d::attempts.eq(0),
            d::next_attempt_at.eq(to_db(now())),
        ))
        .execute(conn)?;
    Ok(())
}
