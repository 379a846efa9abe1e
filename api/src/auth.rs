//! Passwords (argon2id), access tokens (JWT, short-lived), refresh tokens (random, stored
//! as SHA-256, rotated with reuse detection), and the `Caller` extractor that checks the
//! bearer token and reloads the user, so deactivation and role changes apply at once.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use domain::{Actor, OrgId, User, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    // argon2id with the crate's defaults (OWASP's m=19 MiB, t=2, p=1) and a random salt.
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| ApiError::Internal(error.to_string()))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A valid hash of nothing anyone knows: checked when the e-mail is unknown, so that an
/// unknown account takes as long to refuse as a wrong password.
pub fn decoy_hash() -> String {
    hash_password("decoy password that matches nothing").unwrap_or_default()
}

/// Random bytes as URL-safe text: refresh tokens, secrets, generated passwords.
pub fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: i64,
    org: i64,
    iat: i64,
    exp: i64,
    /// The user's token epoch when it was issued (see `domain::User::token_epoch`).
    #[serde(default)]
    ep: i64,
}

/// Signs and checks access tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub ttl_seconds: i64,
}

impl TokenKeys {
    pub fn new(secret: &str, ttl_seconds: i64) -> TokenKeys {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            ttl_seconds,
        }
    }

    pub fn issue(&self, user: &User) -> Result<String, ApiError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.id.get(),
            org: user.org_id.get(),
            iat: now,
            exp: now + self.ttl_seconds,
            ep: user.token_epoch,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|error| ApiError::Internal(format!("signing a token: {error}")))
    }

    /// The user, organization and token epoch a token names, if it is genuine and unexpired.
    pub fn verify(&self, token: &str) -> Result<(UserId, OrgId, i64), ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation) {
            Ok(data) => Ok((
                UserId(data.claims.sub),
                OrgId(data.claims.org),
                data.claims.ep,
            )),
            Err(error) => match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    Err(ApiError::Unauthenticated("the access token has expired"))
                }
                _ => Err(ApiError::Unauthenticated("the access token is not valid")),
            },
        }
    }
}

/// The authenticated, active user making the request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        self.user.actor()
    }

    pub fn org(&self) -> OrgId {
        self.user.org_id
    }
}

/// The bearer token of a request's `Authorization: Bearer …` header.
pub fn bearer_token(request: &HttpRequest) -> Option<String> {
    if let Some(header) = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
    {
        let value = header.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    None
}

/// Checks a token and loads its user: unknown, another tenant's or deactivated users fail.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let (user_id, org_id, epoch) = state.tokens.verify(token)?;
    let store = state.store.clone();
    let user =
        web::block(move || persistence::repo::users::get(&mut *store.conn()?, org_id, user_id))
            .await??;
    match user {
        None => Err(ApiError::Unauthenticated("the access token is not valid")),
        Some(user) if !user.active => Err(ApiError::AccountDisabled),
        // Issued before a deactivation or a new password: ended, even after a reactivation.
        Some(user) if user.token_epoch != epoch => Err(ApiError::Unauthenticated(
            "the access token was revoked; sign in again",
        )),
        Some(user) => Ok(Caller { user }),
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(request);
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            let token = token.ok_or(ApiError::Unauthenticated(
                "send Authorization: Bearer <access_token>",
            ))?;
            authenticate(&state, &token).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip_and_wrong_ones_fail() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn tokens_from_another_key_are_refused() {
        let user = User {
            id: UserId(4),
            org_id: OrgId(2),
            email: "a@example.com".into(),
            name: "A".into(),
            role: domain::Role::Agent,
            active: true,
            status: domain::UserStatus::Offline,
            status_message: None,
            created_at: Utc::now(),
            token_epoch: 0,
        };
        let keys = TokenKeys::new("one secret", 60);
        let token = keys.issue(&user).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), (UserId(4), OrgId(2), 0));
        assert!(TokenKeys::new("another secret", 60).verify(&token).is_err());
        let expired = TokenKeys::new("one secret", -120).issue(&user).unwrap();
        assert!(
            matches!(keys.verify(&expired), Err(ApiError::Unauthenticated(message)) if message.contains("expired"))
        );
    }
}
