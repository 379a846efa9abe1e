//! Passwords (argon2id), access tokens (JWT, short-lived), refresh tokens (random, stored
//! as SHA-256, rotated with reuse detection), and the `Caller` extractor that checks the
//! bearer token against the user and their sign-in, so that deactivation, role changes,
//! sign-out and a new password apply at once.
//!
//! An access token names its sign-in (`sid`: the refresh-token family). Each request checks
//! that the user is active, the token's epoch is the user's (a new password or a
//! deactivation moves it) and the sign-in is not revoked. What a check found is kept for a
//! few seconds ([`SignIns`]) and forgotten on every instance when the bus says the user
//! changed; the instance that made the change forgets before it answers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// The sign-in (refresh-token family) it was issued to; empty in tokens from before
    /// sign-ins were named, which are only checked against the epoch until they expire.
    #[serde(default)]
    sid: String,
}

/// What a genuine, unexpired access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub user: UserId,
    pub org: OrgId,
    pub epoch: i64,
    pub sign_in: String,
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

    /// An access token of `user` for the sign-in `sign_in` (its refresh-token family).
    pub fn issue(&self, user: &User, sign_in: &str) -> Result<String, ApiError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.id.get(),
            org: user.org_id.get(),
            iat: now,
            exp: now + self.ttl_seconds,
            ep: user.token_epoch,
            sid: sign_in.to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|error| ApiError::Internal(format!("signing a token: {error}")))
    }

    /// What a token says, if it is genuine and unexpired.
    pub fn verify(&self, token: &str) -> Result<TokenClaims, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation) {
            Ok(data) => Ok(TokenClaims {
                user: UserId(data.claims.sub),
                org: OrgId(data.claims.org),
                epoch: data.claims.ep,
                sign_in: data.claims.sid,
            }),
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
    /// The sign-in (refresh-token family) the access token belongs to; sockets register
    /// under its [`sign_in_key`].
    pub sign_in: String,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        self.user.actor()
    }

    pub fn org(&self) -> OrgId {
        self.user.org_id
    }
}

/// A sign-in (refresh-token family) as a number: what sockets are registered under, so one
/// sign-out closes that sign-in's sockets and no other.
/// Every instance computes the same key (a sign-out published by one closes sockets on all).
pub fn sign_in_key(sign_in: &str) -> u64 {
    let digest = Sha256::digest(sign_in.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
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

/// Sign-ins found valid a moment ago, per user and sign-in, so that a request does not read
/// the user again for each of an agent's clicks. An entry lasts `ttl`; a bus message about
/// the user ([`realtime::Control::stales_user`]) removes the user's entries on every
/// instance, and the instance that changed the user removes them before it answers.
pub struct SignIns {
    ttl: Duration,
    entries: Mutex<HashMap<UserId, UserSignIns>>,
}

/// One user's checked sign-ins: the user as read, and when, per sign-in.
type UserSignIns = HashMap<String, (User, Instant)>;

/// Users kept at most; past that the cache starts again empty (a burst of sign-ins must not
/// grow it without bound).
const SIGN_INS_KEPT: usize = 50_000;

impl SignIns {
    pub fn new(ttl: Duration) -> SignIns {
        SignIns {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, claims: &TokenClaims) -> Option<User> {
        let entries = self.entries.lock().ok()?;
        let (user, at) = entries.get(&claims.user)?.get(&claims.sign_in)?;
        (at.elapsed() < self.ttl && user.token_epoch == claims.epoch && user.org_id == claims.org)
            .then(|| user.clone())
    }

    fn keep(&self, claims: &TokenClaims, user: &User) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= SIGN_INS_KEPT && !entries.contains_key(&claims.user) {
                entries.clear();
            }
            entries
                .entry(claims.user)
                .or_default()
                .insert(claims.sign_in.clone(), (user.clone(), Instant::now()));
        }
    }

    /// Forgets the user's sign-ins (they changed, or one of them ended).
    pub fn forget(&self, user: UserId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&user);
        }
    }

    /// Forgets everything (the bus may have lost messages).
    pub fn forget_all(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    /// Listens to the bus's control channel and forgets the users it says changed, on this
    /// instance; everything when messages were lost (lag, or `reconnections` firing).
    pub fn listen(
        self: &Arc<SignIns>,
        bus: &dyn realtime::Bus,
        reconnections: Option<tokio::sync::broadcast::Receiver<()>>,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        let mut controls = bus.subscribe_control();
        let sign_ins = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut reconnections = reconnections;
            loop {
                let reconnected = async {
                    match reconnections.as_mut() {
                        Some(receiver) => receiver.recv().await.map_err(|_| ()),
                        None => std::future::pending().await,
                    }
                };
                let heard = tokio::select! {
                    control = controls.recv() => Some(control),
                    outcome = reconnected => {
                        if outcome.is_err() {
                            reconnections = None;
                        }
                        None
                    }
                };
                let Some(sign_ins) = sign_ins.upgrade() else {
                    return;
                };
                match heard {
                    Some(Ok(control)) => {
                        if let Some((_, user)) = control.stales_user() {
                            sign_ins.forget(UserId(user));
                        }
                    }
                    Some(Err(RecvError::Lagged(_))) | None => sign_ins.forget_all(),
                    Some(Err(RecvError::Closed)) => return,
                }
            }
        });
    }
}

/// An admin changed the user (`PATCH /v1/users/{id}`): every instance forgets what it cached
/// of their sign-ins (this one at once), through one bus message that also says which
/// sockets close: all of a deactivated user's (4401), all when `signed_out` by a new
/// password (4402), none for a new role or name.
pub fn user_changed(state: &AppState, user: &User, signed_out: bool) {
    state.sign_ins.forget(user.id);
    let (org, id) = (user.org_id.get(), user.id.get());
    if !user.active {
        state.hub.disconnect_user(org, id);
    } else if signed_out {
        state.hub.sign_out(org, id, None);
    } else {
        state
            .bus
            .publish_control(realtime::Control::UserChanged { org, user: id });
    }
}

/// Ends one sign-in of the user (`Some`), or all (`None`): its access tokens stop working and
/// its sockets close, on every instance.
pub fn signed_out(state: &AppState, org: OrgId, user: UserId, sign_in: Option<&str>) {
    state.sign_ins.forget(user);
    state
        .hub
        .sign_out(org.get(), user.get(), sign_in.map(sign_in_key));
}

/// Checks a token and loads its user: unknown, another tenant's or deactivated users, ended
/// sign-ins and tokens from before a new password fail.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let claims = state.tokens.verify(token)?;
    if let Some(user) = state.sign_ins.get(&claims) {
        let sign_in = claims.sign_in;
        return Ok(Caller { user, sign_in });
    }
    let store = state.store.clone();
    let (org, id, family) = (claims.org, claims.user, claims.sign_in.clone());
    let found = web::block(move || {
        persistence::repo::users::get_signed_in(&mut *store.conn()?, org, id, &family)
    })
    .await??;
    match found {
        None => Err(ApiError::Unauthenticated("the access token is not valid")),
        Some((user, _)) if !user.active => Err(ApiError::AccountDisabled),
        // Issued before a deactivation or a new password: ended, even after a reactivation.
        Some((user, _)) if user.token_epoch != claims.epoch => Err(ApiError::Unauthenticated(
            "the access token was revoked; sign in again",
        )),
        Some((_, false)) => Err(ApiError::Unauthenticated(
            "the session was signed out; sign in again",
        )),
        Some((user, true)) => {
            state.sign_ins.keep(&claims, &user);
            let sign_in = claims.sign_in;
            Ok(Caller { user, sign_in })
        }
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
        let token = keys.issue(&user, "family").unwrap();
        assert_eq!(
            keys.verify(&token).unwrap(),
            TokenClaims {
                user: UserId(4),
                org: OrgId(2),
                epoch: 0,
                sign_in: "family".into()
            }
        );
        assert!(TokenKeys::new("another secret", 60).verify(&token).is_err());
        let expired = TokenKeys::new("one secret", -120)
            .issue(&user, "family")
            .unwrap();
        assert!(
            matches!(keys.verify(&expired), Err(ApiError::Unauthenticated(message)) if message.contains("expired"))
        );
    }
}
