//! Auto-assignment: which logged-in member a new conversation goes to.

use crate::ids::UserId;

/// A member who could take the conversation, with the open conversations they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub user_id: UserId,
    pub open_assigned: i64,
}

/// The least busy candidate under the inbox's limit; ties go to the longest-standing
/// member (lowest id), so the choice is predictable. `None`: everyone is at the limit.
pub fn pick_assignee(candidates: &[Candidate], limit: Option<i32>) -> Option<UserId> {
    candidates
        .iter()
        .filter(|candidate| limit.is_none_or(|limit| candidate.open_assigned < i64::from(limit)))
        .min_by_key(|candidate| (candidate.open_assigned, candidate.user_id))
        .map(|candidate| candidate.user_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn candidate(id: i64, open: i64) -> Candidate {
        Candidate {
            user_id: UserId(id),
            open_assigned: open,
        }
    }

    #[test]
    fn the_least_busy_member_gets_it() {
        assert_eq!(
            pick_assignee(&[candidate(1, 3), candidate(2, 1), candidate(3, 2)], None),
            Some(UserId(2))
        );
    }

    #[test]
    fn ties_go_to_the_lowest_id() {
        assert_eq!(
            pick_assignee(&[candidate(5, 1), candidate(2, 1)], None),
            Some(UserId(2))
        );
    }

    #[test]
    fn nobody_beyond_the_limit() {
        assert_eq!(
            pick_assignee(&[candidate(1, 2), candidate(2, 2)], Some(2)),
            None
        );
        assert_eq!(
            pick_assignee(&[candidate(1, 2), candidate(2, 1)], Some(2)),
            Some(UserId(2))
        );
        assert_eq!(pick_assignee(&[], None), None);
    }

    proptest! {
        #[test]
        fn the_pick_is_never_busier_than_anyone_else(loads in prop::collection::vec(0i64..20, 0..8), limit in prop::option::of(1i32..20)) {
            let candidates: Vec<Candidate> = loads.iter().enumerate().map(|(id, open)| candidate(id as i64, *open)).collect();
            match pick_assignee(&candidates, limit) {
                Some(picked) => {
                    let load = candidates.iter().find(|c| c.user_id == picked).map(|c| c.open_assigned).unwrap_or_default();
                    prop_assert!(limit.is_none_or(|limit| load < i64::from(limit)));
                    prop_assert!(candidates.iter().filter(|c| limit.is_none_or(|limit| c.open_assigned < i64::from(limit))).all(|c| c.open_assigned >= load));
                }
                None => prop_assert!(candidates.iter().all(|c| limit.is_some_and(|limit| c.open_assigned >= i64::from(limit)))),
            }
        }
    }
}
