//! Phone numbers, normalized to E.164 so that one customer is one contact whatever the
//! carrier or the agent typed.

use phonenumber::{Mode, country};

/// Reads a phone number as E.164. A number without a country code is read as North
/// American (+1), as API.md says of 10-digit numbers.
pub fn normalize(input: &str) -> Option<String> {
    let trimmed = input.trim();
    if trimmed.is_empty() || trimmed.len() > 32 {
        return None;
    }
    let parsed = phonenumber::parse(Some(country::Id::US), trimmed).ok()?;
    if !phonenumber::is_valid(&parsed) {
        return None;
    }
    Some(parsed.format().mode(Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_digit_numbers_are_north_american() {
        assert_eq!(normalize("(415) 555-2671").as_deref(), Some("+14155552671"));
        assert_eq!(normalize("415.555.2671").as_deref(), Some("+14155552671"));
    }

    #[test]
    fn international_numbers_keep_their_country() {
        assert_eq!(normalize("+49 30 901820").as_deref(), Some("+4930901820"));
        assert_eq!(
            normalize("+44 20 7946 0958").as_deref(),
            Some("+442079460958")
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(normalize(""), None);
        assert_eq!(normalize("hello"), None);
        assert_eq!(normalize("123"), None);
    }
}
