//! The closed sets of values on the wire, mirrored from `domain` with their schemas.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident => $domain:path { $($variant:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),* }

        impl From<$domain> for $name {
            fn from(value: $domain) -> Self {
                use $domain as D;
                match value { $(D::$variant => $name::$variant),* }
            }
        }

        impl From<$name> for $domain {
            fn from(value: $name) -> Self {
                use $domain as D;
                match value { $($name::$variant => D::$variant),* }
            }
        }
    };
}

wire_enum!(
    /// `admin`: the whole organization; `manager`: supervises their inboxes; `agent`: works them.
    Role => domain::Role { Admin, Manager, Agent }
);
wire_enum!(
    /// `shared`: a team inbox; `private`: one user's personal texting number(s).
    InboxKind => domain::InboxKind { Shared, Private }
);
wire_enum!(
    /// Which conversations of the inbox agents see: `all`, or only those unassigned, theirs
    /// and their teams'.
    AgentVisibility => domain::AgentVisibility { All, AssignedAndUnassigned }
);
wire_enum!(
    ChannelType => domain::ChannelType { Sms, Whatsapp, Facebook, Instagram, Webchat }
);
wire_enum!(
    /// Who carries the channel's messages: `webhook`, Switchboard's own signed JSON (a
    /// bridge the team hosts, or a sandbox without `outbound_url`); `twilio`; `meta` (the
    /// WhatsApp Cloud API, Messenger, Instagram); `webchat`, the website widget.
    ChannelProvider => domain::ChannelProvider { Webhook, Twilio, Meta, Webchat }
);
wire_enum!(
    UserStatus => domain::UserStatus { Online, Away, Offline }
);
wire_enum!(
    /// `direct`: two people (the same pair always shares one chat); `team`: a named group.
    ChatKind => domain::ChatKind { Direct, Team }
);
