//! What every handler shares.

use std::sync::Arc;

use persistence::Store;
use realtime::Bus;

use crate::auth::TokenKeys;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::rate_limit::LoginLimiter;

pub struct AppState {
    pub store: Store,
    pub tokens: TokenKeys,
    /// Signs and checks the attachment links sent to channel providers.
    pub links: crate::links::AttachmentLinks,
    pub config: Config,
    pub login_limiter: LoginLimiter,
    /// Where attachment bytes live (a local directory or object storage).
    pub storage: crate::storage::Storage,
    /// Sign-ins checked a moment ago (see `auth::SignIns`).
    pub sign_ins: Arc<crate::auth::SignIns>,
    pub metrics: Metrics,
    pub bus: Arc<dyn Bus>,
    /// This instance's WebSocket sessions and their fan-out.
    pub hub: Arc<realtime::Hub>,
    /// Compared against when an e-mail is unknown, so sign-in timing does not tell.
    pub decoy_hash: String,
    /// Poked after a commit that queued an outbound message, so the delivery worker sends it
    /// now rather than at its next poll.
    pub deliveries: tokio::sync::Notify,
    /// Seals and opens channel providers' credentials.
    pub sealer: crate::providers::Sealer,
    /// Fetches customers' files from providers (Twilio's media, Meta's CDN), through the
    /// outbound address guard.
    pub provider_http: reqwest::Client,
    /// Web chat requests per visitor token and per client address.
    pub visitors: crate::rate_limit::RequestLimiter,
    /// Responses outside the OpenAPI document, when `config.check_contract` is on.
    pub contract_violations: crate::contract::Violations,
}
