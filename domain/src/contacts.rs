//! Contacts: what a contact may hold, how the directory is ordered and searched, and what a
//! merge keeps. Search works on stored terms (word prefixes of the name, e-mail and company;
//! every digit suffix of each phone number), so that any query is a handful of index ranges:
//! a word prefix matches a word, and a run of digits typed in any format matches the number
//! it is part of.

use crate::conversation::{Conversation, Status};
use crate::error::{DomainError, FieldError, Validator};
use crate::{phone, validate};

pub const MAX_NAME: usize = 200;
pub const MAX_COMPANY: usize = 200;
pub const MAX_NOTES: usize = 5_000;
pub const MAX_NUMBERS: usize = 20;
/// Query words beyond this are ignored (each is one index range).
pub const MAX_QUERY_WORDS: usize = 6;
/// Digit runs shorter than this match too much to be a phone search.
pub const MIN_DIGITS: usize = 3;

/// A term kind is its first character, so word and digit terms never match each other.
const WORD: char = 'w';
const DIGITS: char = '#';
const EMAIL: char = '@';

/// A contact's editable fields, validated: blank texts are `None`, e-mail lower-cased,
/// numbers in E.164 without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactFields {
    pub name: Option<String>,
    pub phone_numbers: Vec<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    pub notes: Option<String>,
}

fn optional(
    checks: &mut Validator,
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Option<String> {
    let value = value.map(str::trim).filter(|value| !value.is_empty())?;
    checks.check(validate::optional_text(field, value, max))
}

/// Validates what a client (or a CSV row) sent; every bad field is reported at once.
pub fn fields(
    name: Option<&str>,
    phone_numbers: &[String],
    email: Option<&str>,
    company: Option<&str>,
    notes: Option<&str>,
) -> Result<ContactFields, DomainError> {
    let mut checks = Validator::new();
    let name = optional(&mut checks, "name", name, MAX_NAME);
    let company = optional(&mut checks, "company", company, MAX_COMPANY);
    let notes = optional(&mut checks, "notes", notes, MAX_NOTES);
    let email = email
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .and_then(|value| checks.check(validate::email("email", value)));
    let numbers = checks.check(numbers(phone_numbers));
    checks.finish()?;
    Ok(ContactFields {
        name,
        phone_numbers: numbers.unwrap_or_default(),
        email,
        company,
        notes,
    })
}

/// Phone numbers in E.164 (a 10-digit number is North American), without repeats.
pub fn numbers(input: &[String]) -> Result<Vec<String>, FieldError> {
    if input.len() > MAX_NUMBERS {
        return Err(FieldError::new(
            "phone_numbers",
            format!("at most {MAX_NUMBERS} numbers"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(input.len());
    for (index, raw) in input.iter().enumerate() {
        let number = phone::normalize(raw).ok_or_else(|| {
            FieldError::new(
                format!("phone_numbers[{index}]"),
                "must be a phone number (E.164, or 10 digits for North America)",
            )
        })?;
        if !out.contains(&number) {
            out.push(number);
        }
    }
    Ok(out)
}

/// A new contact needs something to know it by.
pub fn ensure_identifiable(fields: &ContactFields) -> Result<(), FieldError> {
    if fields.name.is_none() && fields.phone_numbers.is_empty() && fields.email.is_none() {
        return Err(FieldError::new(
            "name",
            "a contact needs a name, a phone number or an e-mail address",
        ));
    }
    Ok(())
}

/// The directory's order: named contacts by name (case-insensitively), then the unnamed
/// ones (unknown numbers); ties by id.
pub fn sort_key(name: Option<&str>) -> String {
    match name.map(str::trim).filter(|name| !name.is_empty()) {
        Some(name) => format!("1{}", name.to_lowercase()),
        None => "2".to_string(),
    }
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
}

/// The terms a contact is found by. `numbers` are its stored addresses (E.164, or a social
/// channel's `<type>:<id>`).
pub fn search_terms(
    name: Option<&str>,
    email: Option<&str>,
    company: Option<&str>,
    numbers: &[String],
) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for text in [name, company, email].into_iter().flatten() {
        terms.extend(words(text).map(|word| format!("{WORD}{word}")));
    }
    if let Some(email) = email {
        terms.push(format!("{EMAIL}{}", email.to_lowercase()));
    }
    for number in numbers.iter().filter(|number| number.starts_with('+')) {
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        // Every suffix: a run of digits anywhere in the number is a prefix of one of them.
        for start in 0..=digits.len().saturating_sub(MIN_DIGITS) {
            terms.push(format!("{DIGITS}{}", &digits[start..]));
        }
    }
    terms.sort();
    terms.dedup();
    terms
}

/// What a search asks for: prefixes that must each match one of a contact's terms.
/// A query that reads as a phone number (digits and the usual separators) is one digit
/// prefix; anything else is its words. Empty: nothing to search.
pub fn query_prefixes(query: &str) -> Vec<String> {
    let query = query.trim();
    let phone_like = query
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let digits: String = query.chars().filter(char::is_ascii_digit).collect();
    if phone_like && digits.len() >= MIN_DIGITS {
        // A whole number in a national format ("(415) 555-2671") finds its E.164 form.
        let digits = phone::normalize(query)
            .map(|number| number.trim_start_matches('+').to_string())
            .unwrap_or(digits);
        return vec![format!("{DIGITS}{digits}")];
    }
    let mut prefixes: Vec<String> = words(query)
        .take(MAX_QUERY_WORDS)
        .map(|word| format!("{WORD}{word}"))
        .collect();
    prefixes.dedup();
    prefixes
}

/// The words of a query for free text (message bodies): runs of letters and digits,
/// lower-cased, without repeats, the first [`MAX_QUERY_WORDS`] of them. Everything else
/// (punctuation, quotes, operators of any search syntax) only separates words.
pub fn query_words(query: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for word in words(query) {
        if found.len() == MAX_QUERY_WORDS {
            break;
        }
        if !found.contains(&word) {
            found.push(word);
        }
    }
    found
}

/// The exact term of an e-mail address (how an import finds an existing contact).
pub fn email_term(email: &str) -> String {
    format!("{EMAIL}{}", email.to_lowercase())
}

/// The upper bound of a prefix range: every string starting with `prefix` sorts below it
/// byte-wise (U+10FFFF is the highest scalar value).
pub fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// The fields a merge keeps: the surviving contact's, with the gaps filled from the other;
/// notes of both. Opted out if either was: consent given to one number holds for the person.
pub fn merged(
    keep: &ContactFields,
    keep_opted_out: bool,
    other: &ContactFields,
    other_opted_out: bool,
) -> (ContactFields, bool) {
    let notes = match (&keep.notes, &other.notes) {
        (Some(mine), Some(theirs)) if mine != theirs => {
            let joined = format!("{mine}\n\n{theirs}");
            Some(joined.chars().take(MAX_NOTES).collect())
        }
        (Some(mine), _) => Some(mine.clone()),
        (None, theirs) => theirs.clone(),
    };
    let mut numbers = keep.phone_numbers.clone();
    for number in &other.phone_numbers {
        if !numbers.contains(number) {
            numbers.push(number.clone());
        }
    }
    (
        ContactFields {
            name: keep.name.clone().or_else(|| other.name.clone()),
            phone_numbers: numbers,
            email: keep.email.clone().or_else(|| other.email.clone()),
            company: keep.company.clone().or_else(|| other.company.clone()),
            notes,
        },
        keep_opted_out || other_opted_out,
    )
}

/// A merge must not leave the customer with two open conversations on one channel (the
/// next message would have no single home): refused until one of them is closed.
pub fn ensure_mergeable(
    moving: &[&Conversation],
    staying: &[&Conversation],
) -> Result<(), DomainError> {
    let open = |item: &&&Conversation| item.status == Status::Open;
    for moved in moving.iter().filter(open) {
        if staying
            .iter()
            .filter(open)
            .any(|kept| kept.channel_id == moved.channel_id)
        {
            return Err(DomainError::invalid(
                "other_id",
                "both contacts have an open conversation on the same channel; close one first",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_prefix(terms: &[String], prefix: &str) -> bool {
        terms.iter().any(|term| term.starts_with(prefix))
    }

    #[test]
    fn any_spelling_of_a_number_finds_it() {
        let terms = search_terms(None, None, None, &["+14155552671".to_string()]);
        for query in [
            "(415) 555-2671",
            "415.555.2671",
            "+1 415 555 2671",
            "555-2671",
            "2671",
            "14155",
        ] {
            let prefixes = query_prefixes(query);
            assert_eq!(prefixes.len(), 1, "{query}");
            assert!(has_prefix(&terms, &prefixes[0]), "{query} → {prefixes:?}");
        }
        assert!(!has_prefix(&terms, &query_prefixes("999-0000")[0]));
    }

    #[test]
    fn words_match_by_prefix_in_name_company_and_email() {
        let terms = search_terms(
            Some("Ana Lima-Souza"),
            Some("ana.lima@Acme.example"),
            Some("Acme Freight"),
            &[],
        );
        for query in ["ana", "souza", "LIM", "acme", "freight", "ana lima"] {
            let prefixes = query_prefixes(query);
            assert!(
                prefixes.iter().all(|prefix| has_prefix(&terms, prefix)),
                "{query}"
            );
        }
        assert!(terms.contains(&email_term("ANA.LIMA@acme.example")));
        assert!(!query_prefixes("bob").iter().all(|p| has_prefix(&terms, p)));
    }

    #[test]
    fn query_words_are_letters_and_digits_only() {
        assert_eq!(
            query_words(r#"  "Refund"* & 'order:42' %_ refund "#),
            vec!["refund", "order", "42"]
        );
        assert!(query_words(r#"" * : & ' % _ \"#).is_empty());
        assert_eq!(query_words("a b c d e f g h").len(), MAX_QUERY_WORDS);
    }

    #[test]
    fn social_addresses_are_not_digit_terms() {
        let terms = search_terms(None, None, None, &["facebook:123456".to_string()]);
        assert!(terms.is_empty());
    }

    #[test]
    fn prefix_end_bounds_every_extension() {
        let end = prefix_end("wana");
        for term in ["wana", "wanabelle", "wana\u{fffd}x"] {
            assert!(term >= "wana" && term < end.as_str(), "{term}");
        }
        assert!("wanb" > end.as_str());
    }

    #[test]
    fn fields_are_cleaned_and_every_problem_reported() {
        let ok = fields(
            Some("  Ana  "),
            &["(415) 555-2671".into(), "+14155552671".into()],
            Some("Ana@Example.com"),
            Some(" "),
            None,
        )
        .unwrap();
        assert_eq!(ok.name.as_deref(), Some("Ana"));
        assert_eq!(ok.phone_numbers, vec!["+14155552671".to_string()]);
        assert_eq!(ok.email.as_deref(), Some("ana@example.com"));
        assert_eq!(ok.company, None);
        let DomainError::Validation(bad) =
            fields(None, &["12".into()], Some("nope"), None, None).unwrap_err()
        else {
            panic!("a validation error");
        };
        let named: Vec<&str> = bad.iter().map(|error| error.field.as_str()).collect();
        assert_eq!(named, vec!["email", "phone_numbers[0]"]);
    }

    #[test]
    fn a_merge_fills_gaps_and_keeps_an_opt_out() {
        let keep = ContactFields {
            name: Some("Ana".into()),
            phone_numbers: vec!["+14155550001".into()],
            ..Default::default()
        };
        let other = ContactFields {
            name: Some("Ana L.".into()),
            phone_numbers: vec!["+14155550002".into(), "+14155550001".into()],
            email: Some("ana@example.com".into()),
            notes: Some("VIP".into()),
            ..Default::default()
        };
        let (merged, opted_out) = merged(&keep, false, &other, true);
        assert_eq!(merged.name.as_deref(), Some("Ana"));
        assert_eq!(merged.email.as_deref(), Some("ana@example.com"));
        assert_eq!(merged.notes.as_deref(), Some("VIP"));
        assert_eq!(merged.phone_numbers.len(), 2);
        assert!(opted_out);
    }

    #[test]
    fn unnamed_contacts_sort_after_named_ones() {
        assert!(sort_key(Some("Zoe")) < sort_key(None));
        assert!(sort_key(Some("ana")) < sort_key(Some("Bob")));
    }
}
