//! Field validation: each function takes what the client sent and returns the clean value
//! or a `FieldError` naming the field.

use crate::error::FieldError;
use crate::model::{ChannelProvider, ChannelType};
use crate::phone;

/// Length limits (characters) the validators apply, named so that the OpenAPI schemas state
/// the same numbers.
pub mod limits {
    /// Names of people, inboxes, teams, organizations; canned-response titles.
    pub const NAME: usize = 100;
    pub const TAG_NAME: usize = 50;
    pub const SHORTCUT: usize = 32;
    /// Canned-response bodies.
    pub const BODY: usize = 5000;
    /// Message, note and chat message bodies (inbound ones too).
    pub const MESSAGE_BODY: usize = 10_000;
    /// Files on one message.
    pub const ATTACHMENTS: usize = 10;
    /// Conversations in one bulk action.
    pub const BULK: usize = 100;
    pub const EMAIL: usize = 254;
    pub const STATUS_MESSAGE: usize = 140;
    /// `#rrggbb` (surrounding spaces are trimmed).
    pub const COLOR_PATTERN: &str = "^\\s*#[0-9A-Fa-f]{6}\\s*$";
}

/// Bounds a required text's length (in characters, as sent: the bound the schema states)
/// and trims it.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let checked = optional_text(field, value, max)?;
    let trimmed = checked.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    Ok(trimmed.to_string())
}

/// Bounds an optional text; blank becomes `None`.
pub fn optional_text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_string())
}

/// A lower-cased e-mail address: one `@`, a non-empty local part and a dotted domain.
pub fn email(field: &str, value: &str) -> Result<String, FieldError> {
    let value = value.trim().to_lowercase();
    let bad = || FieldError::new(field, "must be an e-mail address");
    if value.len() > limits::EMAIL || value.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    let (local, domain) = value.split_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@');
    if local.is_empty() || !domain_ok {
        return Err(bad());
    }
    Ok(value)
}

pub const PASSWORD_MIN: usize = 10;
pub const PASSWORD_MAX: usize = 256;

pub fn password(field: &str, value: &str) -> Result<String, FieldError> {
    let length = value.chars().count();
    if length < PASSWORD_MIN {
        return Err(FieldError::new(
            field,
            format!("must be at least {PASSWORD_MIN} characters"),
        ));
    }
    if length > PASSWORD_MAX {
        return Err(FieldError::new(
            field,
            format!("must be at most {PASSWORD_MAX} characters"),
        ));
    }
    Ok(value.to_string())
}

/// A colour as `#rrggbb`.
pub fn color(field: &str, value: &str) -> Result<String, FieldError> {
    let value = value.trim();
    let ok = value.len() == 7
        && value.starts_with('#')
        && value[1..].chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(FieldError::new(field, "must be a colour like #1f8ceb"))
    }
}

/// Tag names travel in URL paths (`/tags/{tag_name}`), so no slashes.
pub fn tag_name(field: &str, value: &str) -> Result<String, FieldError> {
    let name = text(field, value, limits::TAG_NAME)?;
    if name.contains('/') {
        return Err(FieldError::new(field, "must not contain '/'"));
    }
    Ok(name)
}

/// Canned-response shortcuts are typed after a `/` in the composer: one word.
pub fn shortcut(field: &str, value: &str) -> Result<String, FieldError> {
    let value = text(field, value, limits::SHORTCUT)?;
    if value.chars().any(char::is_whitespace) || value.contains('/') {
        return Err(FieldError::new(field, "must be one word without '/'"));
    }
    Ok(value.to_lowercase())
}

/// A reaction: exactly one emoji as Unicode defines them (skin tones, joined sequences and
/// flags included), with or without the emoji presentation selector.
pub fn emoji(field: &str, value: &str) -> Result<String, FieldError> {
    const PRESENTATION: char = '\u{fe0f}';
    let bare: String = value.chars().filter(|c| *c != PRESENTATION).collect();
    // Digits, `#` and `*` are emoji only as keycaps ("1️⃣"), never bare.
    let known = if value.chars().count() <= 16 && !bare.is_ascii() {
        [value.to_string(), format!("{bare}{PRESENTATION}"), bare]
            .iter()
            .find_map(|candidate| emojis::get(candidate))
    } else {
        None
    };
    match known {
        Some(found) => Ok(found.as_str().to_string()),
        None => Err(FieldError::new(field, "must be one emoji")),
    }
}

pub fn auto_assign_limit(field: &str, value: Option<i32>) -> Result<Option<i32>, FieldError> {
    match value {
        Some(limit) if !(1..=1000).contains(&limit) => Err(FieldError::new(
            field,
            "must be between 1 and 1000, or null",
        )),
        other => Ok(other),
    }
}

/// Where outbound messages are POSTed: an absolute http(s) URL.
pub fn outbound_url(field: &str, value: &str) -> Result<String, FieldError> {
    let value = value.trim();
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty() && value.len() <= 2048 && !value.contains(char::is_whitespace) =>
        {
            Ok(value.to_string())
        }
        _ => Err(FieldError::new(field, "must be an http:// or https:// URL")),
    }
}

/// A channel's address: the business number in E.164 for sms and WhatsApp, the page or
/// account id otherwise; on Meta, WhatsApp's is the Cloud API's phone number id (digits).
pub fn channel_address(
    field: &str,
    provider: ChannelProvider,
    channel: ChannelType,
    value: &str,
) -> Result<String, FieldError> {
    if provider == ChannelProvider::Meta {
        let id = value.trim();
        return if (1..=32).contains(&id.len()) && id.bytes().all(|byte| byte.is_ascii_digit()) {
            Ok(id.to_string())
        } else {
            Err(FieldError::new(
                field,
                "must be the numeric id Meta gives it",
            ))
        };
    }
    if channel.uses_phone_number() {
        phone::normalize(value).ok_or_else(|| FieldError::new(field, "must be a phone number"))
    } else {
        text(field, value, 200)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(
            email("email", " Ana@Example.COM ").unwrap(),
            "ana@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a b@example.com",
            "ana@.com",
        ] {
            assert!(email("email", bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert_eq!(text("name", "  Ana  ", 10).unwrap(), "Ana");
        assert_eq!(text("name", "   ", 10).unwrap_err().field, "name");
        assert!(text("name", "abcdefghijk", 10).is_err());
        assert!(text("name", "bad\u{0}name", 10).is_err());
    }

    #[test]
    fn passwords_have_bounds() {
        assert!(password("password", "short").is_err());
        assert!(password("password", "long enough pass").is_ok());
        assert!(password("password", &"x".repeat(PASSWORD_MAX + 1)).is_err());
    }

    #[test]
    fn colours_shortcuts_and_tags() {
        assert_eq!(color("color", "#1F8CEB").unwrap(), "#1f8ceb");
        assert!(color("color", "blue").is_err());
        assert_eq!(shortcut("shortcut", "Greet").unwrap(), "greet");
        assert!(shortcut("shortcut", "two words").is_err());
        assert!(tag_name("name", "vip/urgent").is_err());
    }

    #[test]
    fn channel_addresses_follow_the_channel() {
        assert_eq!(
            channel_address(
                "address",
                ChannelProvider::Webhook,
                ChannelType::Sms,
                "415 555 2671"
            )
            .unwrap(),
            "+14155552671"
        );
        assert!(
            channel_address(
                "address",
                ChannelProvider::Webhook,
                ChannelType::Whatsapp,
                "page-1"
            )
            .is_err()
        );
        assert_eq!(
            channel_address(
                "address",
                ChannelProvider::Meta,
                ChannelType::Whatsapp,
                " 106540352242922 "
            )
            .unwrap(),
            "106540352242922"
        );
        assert!(
            channel_address(
                "address",
                ChannelProvider::Meta,
                ChannelType::Facebook,
                "page-1"
            )
            .is_err()
        );
        assert_eq!(
            channel_address(
                "address",
                ChannelProvider::Webhook,
                ChannelType::Facebook,
                "page-1"
            )
            .unwrap(),
            "page-1"
        );
    }

    #[test]
    fn reactions_are_one_emoji() {
        for good in ["👍", "❤️", "❤", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🇵🇹", "🏳️‍🌈", "1️⃣"]
        {
            assert!(emoji("emoji", good).is_ok(), "{good:?} should be an emoji");
        }
        // One spelling per emoji, so that reactions group together.
        assert_eq!(emoji("emoji", "❤").unwrap(), emoji("emoji", "❤️").unwrap());
        for bad in [
            "", "a", "ok", "<script>", "👍👍", "👍 ", "1", "\u{fe0f}", "👍a",
        ] {
            assert!(emoji("emoji", bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn outbound_urls_are_http() {
        assert!(outbound_url("outbound_url", "https://example.com/hook").is_ok());
        assert!(outbound_url("outbound_url", "ftp://example.com").is_err());
        assert!(outbound_url("outbound_url", "https://").is_err());
    }
}
