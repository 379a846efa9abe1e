//! Sign-in, refresh with rotation and reuse detection, sign-out.

use std::net::{IpAddr, SocketAddr};

use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::Duration;
use domain::{OrgId, User, UserId, policy};
use openapi::{LoginRequest, Problem, RefreshRequest, TokenResponse};
use persistence::repo::users;
use persistence::{DbConnection, now};

use crate::auth::{random_token, sha256_hex, signed_out, verify_password};
use crate::body::Json;
use crate::db;
use crate::error::ApiError;
use crate::state::AppState;

/// The client address the rate limit counts: the peer, or the proxy's `X-Forwarded-For`
/// when the operator said a proxy is in front.
pub(crate) fn client_address(state: &AppState, request: &HttpRequest) -> String {
    let info = request.connection_info();
    let address = if state.config.trust_proxy {
        info.realip_remote_addr()
    } else {
        info.peer_addr()
    };
    address.map(host_of).unwrap_or_default()
}

/// The host part of a client address: `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1` and
/// `[2001:db8::1]:4711` name one host each. (Cutting at the last `:` would turn every IPv6
/// address into a prefix that many clients share.)
fn host_of(address: &str) -> String {
    let address = address.trim().trim_matches('"');
    if let Ok(ip) = address.parse::<IpAddr>() {
        return ip.to_string();
    }
    if let Ok(socket) = address.parse::<SocketAddr>() {
        return socket.ip().to_string();
    }
    if let Some(ip) = address
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<IpAddr>().ok())
    {
        return ip.to_string();
    }
    // Not an IP address (e.g. an obfuscated `Forwarded: for=_proxy1`): a key as it is, minus
    // any port.
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            host.to_string()
        }
        _ => address.to_string(),
    }
}

/// Stores a new refresh token of `family` and returns the pair of tokens.
fn issue_tokens(
    conn: &mut DbConnection,
    state: &AppState,
    user: User,
    family: &str,
) -> Result<TokenResponse, ApiError> {
    let refresh_token = random_token(32);
    let expires_at = now() + Duration::days(state.config.refresh_token_days);
    users::insert_refresh_token(
        conn,
        user.id,
        family,
        &sha256_hex(&refresh_token),
        expires_at,
    )?;
    Ok(TokenResponse {
        access_token: state.tokens.issue(&user, family)?,
        refresh_token,
        token_type: "Bearer".to_string(),
        expires_in: state.tokens.ttl_seconds,
        user: user.into(),
    })
}

/// Signs in with e-mail and password.
#[utoipa::path(
    tag = "auth",
    operation_id = "login",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "Malformed body", body = Problem),
        (status = 401, description = "`invalid_credentials` or `account_disabled`", body = Problem),
        (status = 409, description = "`organization_required`: the e-mail and password sign in to several organizations, listed in `organizations`; sign in again with one as `org_id`", body = Problem),
        (status = 429, description = "`rate_limited`: too many failed attempts of this account from this client address (held 5 s, doubling per further failure, at most the window), or from this address across accounts; see `Retry-After`", body = Problem),
    )
)]
#[post("/v1/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Json<LoginRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let LoginRequest {
        email,
        password,
        org_id,
    } = body.into_inner();
    let email = email.trim().to_lowercase();
    let address = client_address(&state, &request);
    state
        .login_limiter
        .check(&email, &address)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;

    let lookup = email.clone();
    let found = db::read(&state.store, move |conn| {
        Ok(users::find_for_login(conn, &lookup, org_id.map(OrgId))?)
    })
    .await?;
    let decoy = state.decoy_hash.clone();
    // An address has one account per organization: the password picks which of them.
    let mut matched = web::block(move || {
        if found.is_empty() {
            // Same work as a wrong password, so timing does not tell which accounts exist.
            verify_password(&password, &decoy);
        }
        found
            .into_iter()
            .filter(|(_, hash, _)| verify_password(&password, hash))
            .map(|(user, _, org_name)| (user, org_name))
            .collect::<Vec<_>>()
    })
    .await?;

    if matched.len() > 1 {
        // Only someone who knows the password hears which organizations it opens.
        state.login_limiter.record_success(&email, &address);
        return Err(ApiError::OrganizationRequired(
            matched
                .into_iter()
                .map(|(user, org_name)| (user.org_id.get(), org_name))
                .collect(),
        ));
    }
    let Some((user, _)) = matched.pop() else {
        state.login_limiter.record_failure(&email, &address);
        tracing::info!(target: "switchboard::auth", "failed sign-in");
        return Err(ApiError::InvalidCredentials);
    };
    if !user.active {
        return Err(ApiError::AccountDisabled);
    }
    state.login_limiter.record_success(&email, &address);
    let session_state = state.clone();
    let response = db::write(&state.store, move |conn| {
        issue_tokens(conn, &session_state, user, &random_token(16))
    })
    .await?;
    Ok(web::Json(response))
}

enum Refresh {
    Issued(TokenResponse),
    Refused(ApiError),
    /// A reuse ended the sign-in: its access tokens and sockets end too.
    Revoked {
        org: OrgId,
        user: UserId,
        family: String,
    },
}

/// Trades a refresh token for a new pair. The old one is spent; presenting a spent one
/// again revokes its whole family (somebody copied it).
#[utoipa::path(
    tag = "auth",
    operation_id = "refresh_token",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens; the presented refresh token is spent", body = TokenResponse),
        (status = 401, description = "`unauthenticated` (unknown, spent, revoked or expired) or `account_disabled`", body = Problem),
    )
)]
#[post("/v1/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let token_hash = sha256_hex(body.refresh_token.trim());
    let session_state = state.clone();
    let grace = Duration::seconds(state.config.refresh_reuse_grace_secs);
    // Revocations must commit even though the caller is refused, so refusals are values here.
    let outcome = db::write(&state.store, move |conn| {
        let refused = |message| Ok(Refresh::Refused(ApiError::Unauthenticated(message)));
        let Some(found) = users::find_refresh_token(conn, &token_hash)? else {
            return refused("the refresh token is not valid");
        };
        // One at a time with a sign-out (or another refresh) of the same sign-in, and read
        // again once its turn came: a revocation committed meanwhile is seen.
        users::lock_refresh_family(conn, &found.family)?;
        let Some(stored) = users::find_refresh_token(conn, &token_hash)? else {
            return refused("the refresh token is not valid");
        };
        let Some(user) = users::get_any(conn, stored.user_id)? else {
            return refused("the refresh token is not valid");
        };
        // A deactivated user's sessions were revoked with the deactivation; say why.
        if !user.active {
            return Ok(Refresh::Refused(ApiError::AccountDisabled));
        }
        if stored.revoked {
            return refused("the refresh token has been revoked");
        }
        let spent_now = stored.used_at.is_none() && users::spend_refresh_token(conn, stored.id)?;
        if !spent_now {
            // Spent before, or a moment ago by a concurrent refresh (another tab) that won.
            let spent_at = stored.used_at.unwrap_or_else(now);
            if !policy::refresh_reuse_is_concurrent(spent_at, now(), grace) {
                users::revoke_refresh_family(conn, &stored.family)?;
                tracing::warn!(target: "switchboard::auth", user_id = stored.user_id.get(), "refresh token reused; session revoked");
                return Ok(Refresh::Revoked {
                    org: user.org_id,
                    user: user.id,
                    family: stored.family,
                });
            }
        }
        if stored.expires_at < now() {
            return refused("the refresh token has expired");
        }
        Ok(Refresh::Issued(issue_tokens(conn, &session_state, user, &stored.family)?))
    })
    .await?;
    match outcome {
        Refresh::Issued(response) => Ok(web::Json(response)),
        Refresh::Refused(error) => Err(error),
        Refresh::Revoked { org, user, family } => {
            signed_out(&state, org, user, Some(&family));
            Err(ApiError::Unauthenticated(
                "the refresh token was already used; sign in again",
            ))
        }
    }
}

/// Signs out the session the refresh token belongs to. Unknown tokens are not an error.
#[utoipa::path(
    tag = "auth",
    operation_id = "logout",
    request_body = RefreshRequest,
    responses((status = 204, description = "Signed out"))
)]
#[post("/v1/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let token_hash = sha256_hex(body.refresh_token.trim());
    let ended = db::write(&state.store, move |conn| {
        let Some(stored) = users::find_refresh_token(conn, &token_hash)? else {
            return Ok(None);
        };
        // After a refresh of the same sign-in in flight: the token it adds is revoked too.
        users::lock_refresh_family(conn, &stored.family)?;
        users::revoke_refresh_family(conn, &stored.family)?;
        let user = users::get_any(conn, stored.user_id)?;
        Ok(user.map(|user| (user.org_id, user.id, stored.family)))
    })
    .await?;
    if let Some((org, user, family)) = ended {
        signed_out(&state, org, user, Some(&family));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn each_client_address_is_one_host() {
        assert_eq!(host_of("203.0.113.7"), "203.0.113.7");
        assert_eq!(host_of("203.0.113.7:4711"), "203.0.113.7");
        assert_eq!(host_of("2001:db8::1"), "2001:db8::1");
        assert_eq!(host_of("[2001:db8::1]:4711"), "2001:db8::1");
        assert_eq!(host_of("\"[2001:db8::1]\""), "2001:db8::1");
        assert_ne!(host_of("2001:db8::1"), host_of("2001:db8::2"));
        assert_eq!(host_of("_proxy1"), "_proxy1");
        assert_eq!(host_of("_proxy1:80"), "_proxy1");
    }
}
