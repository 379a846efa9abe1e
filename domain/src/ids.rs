//! Newtype ids, so that a user id can never be passed where an inbox id belongs.

macro_rules! id_type {
    ($($name:ident),* $(,)?) => {$(
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub i64);

        impl $name {
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

id_type!(
    OrgId,
    UserId,
    TeamId,
    InboxId,
    ChannelId,
    ContactId,
    ConversationId,
    MessageId,
    TagId,
    CannedResponseId,
    ChatId,
    ChatMessageId,
);
