//! Switchboard's wire contract (API.md): request and response types with their OpenAPI
//! schemas, the problem document and the event envelope. The committed `openapi.json` beside
//! this crate is the document integrators read; a test keeps it equal to what is served.

pub mod admin;
pub mod auth;
pub mod chats;
pub mod common;
pub mod constraints;
pub mod contacts;
pub mod conversations;
pub mod document;
pub mod enums;
pub mod ops;
pub mod problems;
pub mod webchat;

pub use admin::*;
pub use auth::*;
pub use chats::*;
pub use common::*;
pub use contacts::*;
pub use conversations::*;
pub use enums::*;
pub use ops::*;
pub use problems::ErrorCode;
pub use webchat::*;

/// The committed OpenAPI document, as `make openapi` wrote it.
pub const COMMITTED_SPEC: &str = include_str!("../openapi.json");

/// The committed AsyncAPI document of the WebSocket protocol, as `make openapi` wrote it.
pub const COMMITTED_ASYNCAPI: &str = include_str!("../asyncapi.json");
