//! Signed, expiring links to attachments, for channel providers that fetch an outbound
//! message's files by URL and hold no bearer token:
//! `/v1/public/attachments/{id}?expires=<unix seconds>&signature=<hex HMAC-SHA256>`.
//!
//! The key is derived from the server's JWT secret under a label of its own, so every
//! instance sharing the secret signs and checks the same links, and a link signature is never
//! a valid signature of anything else made with that secret.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ApiError;

type HmacSha256 = Hmac<Sha256>;

/// Separates this key from any other use of the JWT secret.
const KEY_LABEL: &[u8] = b"switchboard/attachment-links/v1";

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not signed by this server for this attachment and time: as good as an unknown id.
    Forged,
    /// Genuine, but past its time.
    Expired,
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            // A bad signature says nothing about whether the attachment exists.
            Refusal::Forged => ApiError::not_found(),
            // Only a genuine link gets this far: telling the provider it waited too long
            // leaks nothing it did not know.
            Refusal::Expired => ApiError::Domain(domain::DomainError::Forbidden),
        }
    }
}

/// Makes and checks attachment links.
#[derive(Clone)]
pub struct AttachmentLinks {
    key: [u8; 32],
    lifetime_seconds: i64,
}

impl std::fmt::Debug for AttachmentLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentLinks")
            .field("key", &"***")
            .field("lifetime_seconds", &self.lifetime_seconds)
            .finish()
    }
}

impl AttachmentLinks {
    pub fn new(jwt_secret: &str, lifetime_seconds: u64) -> AttachmentLinks {
        let mut derive = HmacSha256::new_from_slice(jwt_secret.as_bytes())
            .expect("HMAC takes keys of any length");
        derive.update(KEY_LABEL);
        AttachmentLinks {
            key: derive.finalize().into_bytes().into(),
            lifetime_seconds: i64::try_from(lifetime_seconds).unwrap_or(i64::MAX),
        }
    }

    fn mac(&self, id: i64, expires: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        // Both numbers, unambiguously delimited: `1:23` and `12:3` sign differently.
        mac.update(format!("attachment:{id}:{expires}").as_bytes());
        mac
    }

    /// The link to attachment `id` under `base` (the public URL), valid from `now` for the
    /// configured lifetime.
    pub fn url(&self, base: &str, id: i64, now: DateTime<Utc>) -> String {
        let expires = now.timestamp().saturating_add(self.lifetime_seconds);
        let signature = hex::encode(self.mac(id, expires).finalize().into_bytes());
        format!(
            "{}/v1/public/attachments/{id}?expires={expires}&signature={signature}",
            base.trim_end_matches('/')
        )
    }

    /// Checks a link's signature (in constant time), then its expiry.
    pub fn check(
        &self,
        id: i64,
        expires: i64,
        signature: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let digest = hex::decode(signature.trim()).map_err(|_| Refusal::Forged)?;
        self.mac(id, expires)
            .verify_slice(&digest)
            .map_err(|_| Refusal::Forged)?;
        if now.timestamp() >= expires {
            return Err(Refusal::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (i64, i64, String) {
        let (path, query) = url.split_once('?').unwrap();
        let id = path.rsplit('/').next().unwrap().parse().unwrap();
        let mut expires = 0;
        let mut signature = String::new();
        for pair in query.split('&') {
            match pair.split_once('=').unwrap() {
                ("expires", value) => expires = value.parse().unwrap(),
                ("signature", value) => signature = value.to_string(),
                _ => panic!("unexpected parameter in {url}"),
            }
        }
        (id, expires, signature)
    }

    #[test]
    fn a_link_opens_its_attachment_until_it_expires() {
        let links = AttachmentLinks::new("a secret that is long enough for HS256", 3600);
        let now = Utc::now();
        let url = links.url("https://sb.example/", 42, now);
        assert!(
            url.starts_with("https://sb.example/v1/public/attachments/42?expires="),
            "{url}"
        );
        let (id, expires, signature) = parts(&url);
        assert_eq!(expires, now.timestamp() + 3600);
        assert_eq!(links.check(id, expires, &signature, now), Ok(()));
        let later = now + chrono::Duration::seconds(3600);
        assert_eq!(
            links.check(id, expires, &signature, later),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn changing_anything_forges_it() {
        let links = AttachmentLinks::new("a secret that is long enough for HS256", 60);
        let now = Utc::now();
        let (id, expires, signature) = parts(&links.url("http://x", 7, now));
        assert_eq!(
            links.check(id + 1, expires, &signature, now),
            Err(Refusal::Forged)
        );
        assert_eq!(
            links.check(id, expires + 3600, &signature, now),
            Err(Refusal::Forged),
            "a longer life is not for the taking"
        );
        let mut flipped = signature.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(
            links.check(id, expires, &flipped, now),
            Err(Refusal::Forged)
        );
        assert_eq!(
            links.check(id, expires, "not hex", now),
            Err(Refusal::Forged)
        );
        assert_eq!(links.check(id, expires, "", now), Err(Refusal::Forged));
        let other = AttachmentLinks::new("another secret, just as long as the first", 60);
        assert_eq!(
            other.check(id, expires, &signature, now),
            Err(Refusal::Forged),
            "another deployment's link"
        );
    }

    #[test]
    fn the_key_is_not_the_jwt_secret() {
        let secret = "a secret that is long enough for HS256";
        let links = AttachmentLinks::new(secret, 60);
        assert_ne!(&links.key[..], secret.as_bytes());
        let mut plain = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        plain.update(b"attachment:7:100");
        assert!(
            links
                .mac(7, 100)
                .verify_slice(&plain.finalize().into_bytes())
                .is_err(),
            "a signature made with the JWT secret itself does not open a link"
        );
    }
}
