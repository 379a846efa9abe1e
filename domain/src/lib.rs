//! Switchboard's rules, free of IO: who may do what, what a user may see, how values are
//! validated. Every rule of API.md lives here once; the api and realtime crates call it.

pub mod attachments;
pub mod chats;
pub mod contacts;
pub mod conversation;
pub mod error;
pub mod ids;
pub mod model;
pub mod outbound;
pub mod phone;
pub mod policy;
pub mod routing;
pub mod surveys;
pub mod validate;

pub use error::{DomainError, FieldError};
pub use ids::*;
pub use model::*;
