//! Sign-in, token refresh and the caller's own profile.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::enums::{Role, UserStatus};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "ana@example.com")]
    pub email: String,
    pub password: String,
    /// Which organization to sign in to, when the e-mail and password match accounts in
    /// several (the answer was `409 organization_required`, listing them). Otherwise omit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Single use: each refresh returns a new one and spends this one.
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub user: User,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: i64,
    pub org_id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub active: bool,
    pub status: UserStatus,
    pub status_message: Option<String>,
    #[serde(with = "crate::common::millis")]
    pub created_at: DateTime<Utc>,
}

impl From<domain::User> for User {
    fn from(user: domain::User) -> Self {
        User {
            id: user.id.get(),
            org_id: user.org_id.get(),
            email: user.email,
            name: user.name,
            role: user.role.into(),
            active: user.active,
            status: user.status.into(),
            status_message: user.status_message,
            created_at: user.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Membership {
    pub inbox_id: i64,
    /// Whether the user takes conversations from this inbox's queue now.
    pub logged_in: bool,
}

/// The caller, with their inbox memberships and teams.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Me {
    #[serde(flatten)]
    pub user: User,
    pub memberships: Vec<Membership>,
    pub teams: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueRequest {
    pub logged_in: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    pub status: UserStatus,
    /// A short note shown to colleagues ("back at 2pm"); omit or `null` to clear.
    pub message: Option<String>,
}
