//! Satisfaction surveys: what a customer's answer may be, how it reads in the conversation,
//! and who may read the results over which inboxes.

use chrono::{DateTime, Utc};

use crate::error::{DomainError, FieldError, Validator};
use crate::model::{Actor, Role};
use crate::validate;

pub const LOWEST_RATING: i32 = 1;
pub const HIGHEST_RATING: i32 = 5;
pub const MAX_COMMENT_CHARS: usize = 2000;

/// A checked answer: the rating and the comment, if the customer wrote one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub rating: i32,
    pub comment: Option<String>,
}

/// Checks what the customer sent; a blank comment is no comment.
pub fn answer(rating: i32, comment: Option<&str>) -> Result<Answer, DomainError> {
    let mut checks = Validator::new();
    let rating = checks.check(if (LOWEST_RATING..=HIGHEST_RATING).contains(&rating) {
        Ok(rating)
    } else {
        Err(FieldError::new(
            "rating",
            format!("must be between {LOWEST_RATING} and {HIGHEST_RATING}"),
        ))
    });
    let comment = match comment.map(str::trim) {
        None | Some("") => None,
        Some(text) => checks.check(validate::optional_text("comment", text, MAX_COMMENT_CHARS)),
    };
    checks.finish()?;
    Ok(Answer {
        rating: rating.unwrap_or(LOWEST_RATING),
        comment,
    })
}

/// The line the answer becomes in the conversation: `Rated 4/5: <comment>`.
pub fn answer_body(answer: &Answer) -> String {
    let score = format!("Rated {}/{HIGHEST_RATING}", answer.rating);
    match &answer.comment {
        Some(comment) => format!("{score}: {comment}"),
        None => score,
    }
}

/// Which answers a summary may cover for its reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryScope {
    /// Every inbox of the organization (admins).
    Organization,
    /// Only the inboxes the reader belongs to (managers).
    MemberInboxes,
}

/// Results are for supervisors: admins over the organization, managers over their inboxes.
/// Agents do not read their colleagues' ratings.
pub fn summary_scope(actor: &Actor) -> Result<SummaryScope, DomainError> {
    match actor.role {
        Role::Admin => Ok(SummaryScope::Organization),
        Role::Manager => Ok(SummaryScope::MemberInboxes),
        Role::Agent => Err(DomainError::Forbidden),
    }
}

/// A summary's period, `[from, to)`; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// A period that ends before it starts is a mistake worth telling, not an empty result.
pub fn period(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Period, DomainError> {
    match (from, to) {
        (Some(from), Some(to)) if from > to => {
            Err(DomainError::invalid("from", "must not be later than `to`"))
        }
        _ => Ok(Period { from, to }),
    }
}

/// The mean of `count` ratings adding up to `sum` (`None` for no ratings).
pub fn mean(sum: i64, count: i64) -> Option<f64> {
    (count > 0).then(|| sum as f64 / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{OrgId, UserId};

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: UserId(1),
            org_id: OrgId(1),
            role,
        }
    }

    #[test]
    fn ratings_run_from_one_to_five() {
        for rating in 1..=5 {
            assert_eq!(answer(rating, None).map(|a| a.rating), Ok(rating));
        }
        for rating in [0, 6, -1, i32::MAX] {
            let Err(DomainError::Validation(fields)) = answer(rating, None) else {
                panic!("{rating} accepted");
            };
            assert_eq!(fields[0].field, "rating");
        }
    }

    #[test]
    fn a_blank_comment_is_no_comment_and_a_long_one_is_refused() {
        assert_eq!(answer(4, Some("   ")).map(|a| a.comment), Ok(None));
        assert_eq!(
            answer(4, Some("  Quick, thanks ")).map(|a| a.comment),
            Ok(Some("Quick, thanks".into()))
        );
        let long = "x".repeat(MAX_COMMENT_CHARS + 1);
        let Err(DomainError::Validation(fields)) = answer(9, Some(&long)) else {
            panic!("accepted");
        };
        let named: Vec<&str> = fields.iter().map(|field| field.field.as_str()).collect();
        assert_eq!(named, ["rating", "comment"], "every bad field is named");
    }

    #[test]
    fn the_answer_reads_as_a_rating_with_its_comment() {
        let with = answer(4, Some("Quick and kind")).unwrap();
        assert_eq!(answer_body(&with), "Rated 4/5: Quick and kind");
        let without = answer(2, None).unwrap();
        assert_eq!(answer_body(&without), "Rated 2/5");
    }

    #[test]
    fn only_supervisors_read_results() {
        assert_eq!(
            summary_scope(&actor(Role::Admin)),
            Ok(SummaryScope::Organization)
        );
        assert_eq!(
            summary_scope(&actor(Role::Manager)),
            Ok(SummaryScope::MemberInboxes)
        );
        assert_eq!(
            summary_scope(&actor(Role::Agent)),
            Err(DomainError::Forbidden)
        );
    }

    #[test]
    fn a_period_may_be_open_or_empty_but_not_reversed() {
        let early = DateTime::<Utc>::from_timestamp(1_000, 0).unwrap();
        let late = DateTime::<Utc>::from_timestamp(2_000, 0).unwrap();
        assert!(period(Some(early), Some(late)).is_ok());
        assert!(period(Some(early), Some(early)).is_ok());
        assert!(period(None, Some(early)).is_ok());
        assert!(period(Some(late), None).is_ok());
        assert!(matches!(
            period(Some(late), Some(early)),
            Err(DomainError::Validation(_))
        ));
    }

    #[test]
    fn the_mean_of_nothing_is_none() {
        assert_eq!(mean(0, 0), None);
        assert_eq!(mean(7, 2), Some(3.5));
    }
}
