//! Operations endpoints.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// Each dependency: `ok`, `down`, or `not_configured`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ok` when the database and (when configured) Redis answer; `unavailable` otherwise.
    pub status: String,
    /// `ok` or `down`.
    pub database: String,
    /// `ok`, `down`, or `not_configured` (the in-process bus).
    pub redis: String,
    /// Where attachments live: `ok` or `down` (object storage), or `local` (the data
    /// directory). Object storage being down does not make the instance unready: every
    /// instance shares it, and everything but files still works.
    pub storage: String,
}
