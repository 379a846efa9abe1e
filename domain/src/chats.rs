//! Internal chats (API.md, Internal chats): who a new chat is between and what it is called.
//! The api checks that the people named exist and are active in the caller's organization;
//! these rules decide the rest. Nobody can start a chat they are not in: the caller is
//! always a member.

use crate::error::{FieldError, Validator};
use crate::ids::UserId;
use crate::model::ChatKind;
use crate::validate;

/// Most people in one chat, the caller included.
pub const MAX_MEMBERS: usize = 100;
/// Longest team chat name, in characters.
pub const NAME_MAX: usize = 100;

/// A chat about to be created, as the rules shaped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub kind: ChatKind,
    /// Team chats only.
    pub name: Option<String>,
    /// The members besides the caller, each once, in id order.
    pub others: Vec<UserId>,
}

/// The key of the direct chat between two people, whichever of them asks.
pub fn direct_key(one: UserId, other: UserId) -> String {
    let (low, high) = if one <= other {
        (one, other)
    } else {
        (other, one)
    };
    format!("{low}:{high}")
}

/// Shapes the chat `caller` asks for. `member_ids` may name the caller or repeat someone.
pub fn plan(
    caller: UserId,
    kind: ChatKind,
    name: Option<&str>,
    member_ids: &[UserId],
) -> Result<Planned, crate::DomainError> {
    let mut others: Vec<UserId> = member_ids
        .iter()
        .copied()
        .filter(|id| *id != caller)
        .collect();
    others.sort_unstable();
    others.dedup();
    let mut check = Validator::new();
    let name = match kind {
        ChatKind::Direct => {
            if name.is_some_and(|name| !name.trim().is_empty()) {
                check.check::<()>(Err(FieldError::new(
                    "name",
                    "a direct chat has no name; give a name for a team chat",
                )));
            }
            if others.len() != 1 {
                check.check::<()>(Err(FieldError::new(
                    "member_ids",
                    "a direct chat is between you and exactly one other person",
                )));
            }
            None
        }
        ChatKind::Team => {
            let name = check.check(
                name.ok_or_else(|| FieldError::new("name", "a team chat needs a name"))
                    .and_then(|name| validate::text("name", name, NAME_MAX)),
            );
            if others.is_empty() {
                check.check::<()>(Err(FieldError::new(
                    "member_ids",
                    "a team chat needs at least one other member",
                )));
            }
            if others.len() + 1 > MAX_MEMBERS {
                check.check::<()>(Err(FieldError::new(
                    "member_ids",
                    format!("a chat has at most {MAX_MEMBERS} members, you included"),
                )));
            }
            name
        }
    };
    check.finish()?;
    Ok(Planned { kind, name, others })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DomainError;

    fn fields(error: DomainError) -> Vec<String> {
        match error {
            DomainError::Validation(fields) => fields.into_iter().map(|f| f.field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_direct_chat_has_the_same_key_whoever_starts_it() {
        assert_eq!(direct_key(UserId(7), UserId(3)), "3:7");
        assert_eq!(direct_key(UserId(3), UserId(7)), "3:7");
        let ana_to_bo = plan(UserId(7), ChatKind::Direct, None, &[UserId(3)]).unwrap();
        let bo_to_ana = plan(UserId(3), ChatKind::Direct, None, &[UserId(7), UserId(3)]).unwrap();
        assert_eq!(ana_to_bo.others, vec![UserId(3)]);
        assert_eq!(bo_to_ana.others, vec![UserId(7)]);
        assert_eq!(ana_to_bo.name, None);
    }

    #[test]
    fn a_direct_chat_is_with_exactly_one_other_person() {
        for members in [vec![], vec![UserId(1)], vec![UserId(2), UserId(3)]] {
            let error = plan(UserId(1), ChatKind::Direct, None, &members).unwrap_err();
            assert_eq!(fields(error), ["member_ids"], "{members:?}");
        }
        // Naming someone twice is naming them once.
        assert!(plan(UserId(1), ChatKind::Direct, None, &[UserId(2), UserId(2)]).is_ok());
        let named = plan(UserId(1), ChatKind::Direct, Some("Us"), &[UserId(2)]).unwrap_err();
        assert_eq!(fields(named), ["name"]);
    }

    #[test]
    fn a_team_chat_needs_a_name_and_someone_else() {
        let error = plan(UserId(1), ChatKind::Team, None, &[UserId(1)]).unwrap_err();
        assert_eq!(fields(error), ["name", "member_ids"]);
        let blank = plan(UserId(1), ChatKind::Team, Some("  "), &[UserId(2)]).unwrap_err();
        assert_eq!(fields(blank), ["name"]);
        let long = "x".repeat(NAME_MAX + 1);
        assert!(plan(UserId(1), ChatKind::Team, Some(&long), &[UserId(2)]).is_err());
        let planned = plan(
            UserId(1),
            ChatKind::Team,
            Some(" Night shift "),
            &[UserId(3), UserId(2), UserId(3), UserId(1)],
        )
        .unwrap();
        assert_eq!(planned.name.as_deref(), Some("Night shift"));
        assert_eq!(planned.others, vec![UserId(2), UserId(3)]);
    }

    #[test]
    fn a_chat_has_at_most_a_hundred_members() {
        let others: Vec<UserId> = (2..=MAX_MEMBERS as i64).map(UserId).collect();
        assert!(plan(UserId(1), ChatKind::Team, Some("All"), &others).is_ok());
        let too_many: Vec<UserId> = (2..=MAX_MEMBERS as i64 + 1).map(UserId).collect();
        let error = plan(UserId(1), ChatKind::Team, Some("All"), &too_many).unwrap_err();
        assert_eq!(fields(error), ["member_ids"]);
    }
}
