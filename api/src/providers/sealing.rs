//! Provider credentials at rest: sealed with XChaCha20-Poly1305 under the server's
//! credentials key, so a copy of the database (a backup, a replica, a support dump) holds
//! no usable Twilio token or Meta app secret.
//!
//! The key is `SWITCHBOARD_CREDENTIALS_KEY` (32 bytes, base64 or hex), or else derived from
//! the JWT secret under a label of its own, as the attachment links' key is. The sealed form
//! is `v1.<base64 of the 24-byte nonce and the ciphertext>`; the channel's organization is
//! the associated data, so credentials copied onto another organization's channel do not
//! open.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Separates this key from any other use of the JWT secret.
const KEY_LABEL: &[u8] = b"switchboard/provider-credentials/v1";
const VERSION: &str = "v1.";
const NONCE_BYTES: usize = 24;

/// Seals and opens provider credentials.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    /// The configured key (base64 or hex of 32 bytes), or one derived from the JWT secret.
    pub fn new(configured: Option<&str>, jwt_secret: &str) -> Result<Sealer, String> {
        let key: [u8; 32] = match configured.map(str::trim).filter(|key| !key.is_empty()) {
            Some(text) => decode_key(text).ok_or(
                "SWITCHBOARD_CREDENTIALS_KEY must be 32 bytes, as base64 or as 64 hex digits",
            )?,
            None => {
                let mut derive = <Hmac<Sha256> as Mac>::new_from_slice(jwt_secret.as_bytes())
                    .map_err(|error| error.to_string())?;
                derive.update(KEY_LABEL);
                derive.finalize().into_bytes().into()
            }
        };
        Ok(Sealer {
            cipher: XChaCha20Poly1305::new(&key.into()),
        })
    }

    /// The sealed form of `plain` for a channel of organization `org`.
    pub fn seal(&self, org: i64, plain: &[u8]) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let aad = org.to_be_bytes();
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| "cannot seal the credentials".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{VERSION}{}", STANDARD.encode(out)))
    }

    /// The plain text of credentials sealed by [`Sealer::seal`] for `org`; `None` when they
    /// were sealed under another key or for another organization, or were tampered with.
    pub fn open(&self, org: i64, sealed: &str) -> Option<Vec<u8>> {
        let bytes = STANDARD.decode(sealed.strip_prefix(VERSION)?).ok()?;
        if bytes.len() <= NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().ok()?;
        let aad = org.to_be_bytes();
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()
    }
}

fn decode_key(text: &str) -> Option<[u8; 32]> {
    let bytes = if text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        hex::decode(text).ok()?
    } else {
        STANDARD.decode(text).ok()?
    };
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_credentials_open_only_with_the_key_and_organization_they_were_sealed_for() {
        let sealer = Sealer::new(None, "a jwt secret of more than 32 characters").unwrap();
        let sealed = sealer.seal(7, br#"{"auth_token":"s3cret"}"#).unwrap();
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("s3cret"));
        assert_eq!(
            sealer.open(7, &sealed).as_deref(),
            Some(&br#"{"auth_token":"s3cret"}"#[..])
        );
        assert_eq!(sealer.open(8, &sealed), None, "another organization's");
        let other = Sealer::new(None, "another jwt secret of more than 32 chars").unwrap();
        assert_eq!(other.open(7, &sealed), None, "another key");
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(sealer.open(7, &tampered), None);
        assert_eq!(sealer.open(7, "plain text"), None);
        // Every seal takes a new nonce.
        assert_ne!(sealer.seal(7, b"x").unwrap(), sealer.seal(7, b"x").unwrap());
    }

    #[test]
    fn a_configured_key_is_32_bytes_of_base64_or_hex() {
        let hex_key = "00".repeat(32);
        let base64_key = STANDARD.encode([1u8; 32]);
        assert!(Sealer::new(Some(&hex_key), "unused").is_ok());
        assert!(Sealer::new(Some(&base64_key), "unused").is_ok());
        assert!(Sealer::new(Some("too short"), "unused").is_err());
        assert!(Sealer::new(Some(&STANDARD.encode([1u8; 31])), "unused").is_err());
        // A configured key does not depend on the JWT secret.
        let one = Sealer::new(Some(&hex_key), "first").unwrap();
        let two = Sealer::new(Some(&hex_key), "second").unwrap();
        assert!(two.open(1, &one.seal(1, b"x").unwrap()).is_some());
    }
}
