//! What handlers call: the steps of each use case, composed inside one transaction, with
//! the domain rules deciding and the repositories storing. Handlers parse and answer.

pub mod attachments;
pub mod auto_assign;
pub mod chats;
pub mod contacts;
pub mod contacts_csv;
pub mod conversations;
pub mod events;
pub mod idempotency;
pub mod messaging;
pub mod present;
pub mod surveys;
pub mod visibility;
pub mod webchat;
