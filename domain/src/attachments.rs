//! Attachments: what a file really is (sniffed from its first bytes, never trusted from
//! its name or declared type) and which channels may carry it (API.md, Attachments).

use crate::error::DomainError;
use crate::model::ChannelType;

/// The families API.md allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Image,
    Pdf,
    Vcard,
    Audio,
    Video,
}

/// A recognized file: its family and canonical content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub family: Family,
    pub content_type: &'static str,
}

/// Largest file an sms/mms channel carries.
pub const MMS_MAX_BYTES: i64 = 5 * 1024 * 1024;

/// Recognizes the allowed file types by their signatures.
pub fn sniff(bytes: &[u8]) -> Option<Sniffed> {
    let is = |family, content_type| {
        Some(Sniffed {
            family,
            content_type,
        })
    };
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return is(Family::Image, "image/jpeg");
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return is(Family::Image, "image/png");
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return is(Family::Image, "image/gif");
    }
    if bytes.starts_with(b"%PDF-") {
        return is(Family::Pdf, "application/pdf");
    }
    let text_start = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if text_start.len() >= 11 && text_start[..11].eq_ignore_ascii_case(b"BEGIN:VCARD") {
        return is(Family::Vcard, "text/vcard");
    }
    if bytes.starts_with(b"OggS") {
        return is(Family::Audio, "audio/ogg");
    }
    if bytes.starts_with(b"ID3") || (bytes.len() > 1 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0)
    {
        return is(Family::Audio, "audio/mpeg");
    }
    if bytes.starts_with(b"#!AMR") {
        return is(Family::Audio, "audio/amr");
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        let brand = &bytes[8..12];
        return match brand {
            b"M4A " | b"M4B " => is(Family::Audio, "audio/mp4"),
            b"3gp4" | b"3gp5" | b"3gp6" | b"3g2a" => is(Family::Video, "video/3gpp"),
            b"qt  " => is(Family::Video, "video/quicktime"),
            _ => is(Family::Video, "video/mp4"),
        };
    }
    None
}

/// Whether the type the client declared fits what the bytes are (`image/jpg` for a JPEG,
/// any `audio/*` for audio, …). An absent or generic declaration is no claim.
pub fn declared_fits(declared: Option<&str>, sniffed: &Sniffed) -> bool {
    let Some(declared) = declared.map(|value| {
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }) else {
        return true;
    };
    if declared.is_empty() || declared == "application/octet-stream" {
        return true;
    }
    match sniffed.family {
        Family::Image => {
            declared == sniffed.content_type
                || (sniffed.content_type == "image/jpeg" && declared == "image/jpg")
        }
        Family::Pdf => declared == "application/pdf",
        Family::Vcard => matches!(
            declared.as_str(),
            "text/vcard" | "text/x-vcard" | "text/directory"
        ),
        Family::Audio => declared.starts_with("audio/"),
        Family::Video => declared.starts_with("video/"),
    }
}

/// Whether the channel may carry this file: at most 5 MB on sms/mms, voice notes (audio)
/// on WhatsApp only.
pub fn may_attach(channel: ChannelType, family: Family, size: i64) -> Result<(), DomainError> {
    if channel == ChannelType::Sms && size > MMS_MAX_BYTES {
        return Err(DomainError::AttachmentNotAllowedOnChannel);
    }
    if family == Family::Audio && channel != ChannelType::Whatsapp {
        return Err(DomainError::AttachmentNotAllowedOnChannel);
    }
    Ok(())
}

/// The family a stored content type belongs to.
pub fn family_of(content_type: &str) -> Option<Family> {
    match content_type {
        "image/jpeg" | "image/png" | "image/gif" => Some(Family::Image),
        "application/pdf" => Some(Family::Pdf),
        "text/vcard" => Some(Family::Vcard),
        other if other.starts_with("audio/") => Some(Family::Audio),
        other if other.starts_with("video/") => Some(Family::Video),
        _ => None,
    }
}

/// A filename safe to store and to send back: no path, no control characters, bounded.
pub fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(200)
        .collect();
    let cleaned = cleaned.trim().to_string();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "file".to_string()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_known_by_their_bytes() {
        assert_eq!(
            sniff(b"\xFF\xD8\xFF\xE0rest").unwrap().content_type,
            "image/jpeg"
        );
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\nrest").unwrap().content_type,
            "image/png"
        );
        assert_eq!(sniff(b"GIF89a...").unwrap().family, Family::Image);
        assert_eq!(sniff(b"%PDF-1.7").unwrap().family, Family::Pdf);
        assert_eq!(
            sniff(b"begin:vcard\r\nVERSION:4.0").unwrap().family,
            Family::Vcard
        );
        assert_eq!(sniff(b"OggS\0\x02").unwrap().family, Family::Audio);
        assert_eq!(
            sniff(b"\0\0\0\x18ftypmp42").unwrap().content_type,
            "video/mp4"
        );
        assert_eq!(sniff(b"\0\0\0\x18ftypM4A ").unwrap().family, Family::Audio);
        assert_eq!(sniff(b"MZ\x90\0 an executable"), None);
        assert_eq!(sniff(b"<html>"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn a_declared_type_must_fit_the_bytes() {
        let jpeg = sniff(b"\xFF\xD8\xFF\xE0").unwrap();
        assert!(declared_fits(Some("image/jpeg"), &jpeg));
        assert!(declared_fits(Some("image/jpg"), &jpeg));
        assert!(declared_fits(None, &jpeg));
        assert!(declared_fits(Some("application/octet-stream"), &jpeg));
        assert!(!declared_fits(Some("image/png"), &jpeg));
        assert!(!declared_fits(Some("application/pdf"), &jpeg));
    }

    #[test]
    fn channels_carry_what_they_can() {
        assert!(may_attach(ChannelType::Sms, Family::Image, MMS_MAX_BYTES).is_ok());
        assert_eq!(
            may_attach(ChannelType::Sms, Family::Image, MMS_MAX_BYTES + 1),
            Err(DomainError::AttachmentNotAllowedOnChannel)
        );
        assert_eq!(
            may_attach(ChannelType::Sms, Family::Audio, 10),
            Err(DomainError::AttachmentNotAllowedOnChannel)
        );
        assert!(may_attach(ChannelType::Whatsapp, Family::Audio, 10).is_ok());
        assert!(may_attach(ChannelType::Whatsapp, Family::Video, MMS_MAX_BYTES * 2).is_ok());
    }

    #[test]
    fn filenames_lose_their_paths() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\Users\\ana\\photo.jpg"), "photo.jpg");
        assert_eq!(clean_filename(""), "file");
        assert_eq!(clean_filename("a\"b\nc.png"), "abc.png");
    }
}
