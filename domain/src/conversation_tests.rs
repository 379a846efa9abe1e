use super::*;
use crate::model::InboxSettings;

// ---------------------------------------------------------------------------------------------
// Fixtures: one organization, one inbox (and a second one to move to), users 1..=4.
// ---------------------------------------------------------------------------------------------

const ORG: OrgId = OrgId(1);
const OTHER_ORG: OrgId = OrgId(2);
const INBOX: InboxId = InboxId(10);
const OTHER_INBOX: InboxId = InboxId(11);

/// The caller of most tests.
const ME: i64 = 1;
/// Someone else in the same inbox.
const COLLEAGUE: i64 = 2;
/// A team the caller is in, and one they are not in.
const MY_TEAM: i64 = 5;
const THEIR_TEAM: i64 = 6;

use AgentVisibility::{All, AssignedAndUnassigned};

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("a valid timestamp")
}

fn actor(role: Role, id: i64) -> Actor {
    Actor {
        user_id: UserId(id),
        org_id: ORG,
        role,
    }
}

fn inbox(
    kind: InboxKind,
    owner: Option<i64>,
    visibility: AgentVisibility,
    assignment_mode: bool,
    allow_move: bool,
) -> Inbox {
    Inbox {
        id: INBOX,
        org_id: ORG,
        name: "Support".into(),
        settings: InboxSettings {
            kind,
            owner_id: owner.map(UserId),
            assignment_mode,
            agent_visibility: visibility,
            allow_move,
            ..InboxSettings::default()
        },
        created_at: at(),
    }
}

/// A shared inbox with assignment and moves on.
fn shared(visibility: AgentVisibility) -> Inbox {
    inbox(InboxKind::Shared, None, visibility, true, true)
}

/// A private inbox owned by `owner`.
fn private(owner: i64) -> Inbox {
    inbox(InboxKind::Private, Some(owner), All, true, true)
}

/// The same inbox under another id: the destination of a move.
fn elsewhere(inbox: Inbox) -> Inbox {
    Inbox {
        id: OTHER_INBOX,
        name: "Sales".into(),
        ..inbox
    }
}

fn conversation(assignee: Option<i64>, team: Option<i64>, status: Status) -> Conversation {
    Conversation {
        id: ConversationId(100),
        org_id: ORG,
        inbox_id: INBOX,
        channel_id: ChannelId(20),
        contact_id: ContactId(30),
        status,
        archived: false,
        spam: false,
        assignee_id: assignee.map(UserId),
        team_id: team.map(TeamId),
        last_message_id: None,
        last_message_at: None,
        last_message_preview: None,
        message_count: 0,
        created_at: at(),
        closed_at: (status == Status::Closed).then(at),
        closed_by: None,
    }
}

fn open(assignee: Option<i64>) -> Conversation {
    conversation(assignee, None, Status::Open)
}

fn closed(assignee: Option<i64>) -> Conversation {
    conversation(assignee, None, Status::Closed)
}

/// An assignee who is a member of the inbox (and of the requested team, if any).
fn member(id: i64) -> Option<Target> {
    Some(Target {
        user_id: UserId(id),
        is_inbox_member: true,
        in_team: true,
    })
}

fn teams(ids: &[i64]) -> Vec<TeamId> {
    ids.iter().copied().map(TeamId).collect()
}

/// Whether `actor` sees the conversation, asserting that the list scope agrees.
fn sees(
    actor: &Actor,
    inbox: &Inbox,
    is_member: bool,
    my_teams: &[i64],
    conversation: &Conversation,
) -> bool {
    let my_teams = teams(my_teams);
    let single = may_see(actor, inbox, is_member, &my_teams, conversation);
    if conversation.org_id == actor.org_id && conversation.inbox_id == inbox.id {
        let scope = inbox_scope(actor, inbox, is_member);
        let listed = scope_admits(
            scope,
            actor,
            &my_teams,
            conversation.assignee_id,
            conversation.team_id,
        );
        assert_eq!(single, listed, "the list and the single GET disagree");
    }
    single
}

/// Every assignee/team combination a conversation can have in the fixtures.
fn every_conversation() -> Vec<Conversation> {
    let mut all = Vec::new();
    for assignee in [None, Some(ME), Some(COLLEAGUE), Some(3)] {
        for team in [None, Some(MY_TEAM), Some(THEIR_TEAM)] {
            all.push(conversation(assignee, team, Status::Open));
            all.push(conversation(assignee, team, Status::Closed));
        }
    }
    all
}

const ROLES: [Role; 3] = [Role::Admin, Role::Manager, Role::Agent];

// ---------------------------------------------------------------------------------------------
// Visibility
// ---------------------------------------------------------------------------------------------

#[test]
fn an_admin_sees_every_conversation_of_a_shared_inbox_member_or_not() {
    let admin = actor(Role::Admin, ME);
    for visibility in [All, AssignedAndUnassigned] {
        let inbox = shared(visibility);
        assert_eq!(inbox_scope(&admin, &inbox, false), InboxScope::Everything);
        for conversation in every_conversation() {
            for is_member in [true, false] {
                assert!(
                    sees(&admin, &inbox, is_member, &[], &conversation),
                    "{conversation:?}"
                );
            }
        }
    }
}

#[test]
fn a_manager_sees_every_conversation_of_an_inbox_they_belong_to() {
    let manager = actor(Role::Manager, ME);
    for visibility in [All, AssignedAndUnassigned] {
        let inbox = shared(visibility);
        assert_eq!(inbox_scope(&manager, &inbox, true), InboxScope::Everything);
        for conversation in every_conversation() {
            assert!(
                sees(&manager, &inbox, true, &[], &conversation),
                "{conversation:?}"
            );
        }
    }
}

#[test]
fn a_manager_sees_nothing_of_an_inbox_they_do_not_belong_to() {
    let manager = actor(Role::Manager, ME);
    for visibility in [All, AssignedAndUnassigned] {
        let inbox = shared(visibility);
        assert_eq!(inbox_scope(&manager, &inbox, false), InboxScope::Nothing);
        for conversation in every_conversation() {
            assert!(
                !sees(&manager, &inbox, false, &[MY_TEAM], &conversation),
                "{conversation:?}"
            );
        }
    }
}

#[test]
fn an_agent_sees_unassigned_conversations() {
    let agent = actor(Role::Agent, ME);
    let inbox = shared(AssignedAndUnassigned);
    assert_eq!(
        inbox_scope(&agent, &inbox, true),
        InboxScope::AssignedAndUnassigned
    );
    assert!(sees(&agent, &inbox, true, &[], &open(None)));
    assert!(sees(
        &agent,
        &inbox,
        true,
        &[],
        &conversation(None, Some(THEIR_TEAM), Status::Open)
    ));
}

#[test]
fn an_agent_sees_their_own_conversations() {
    let agent = actor(Role::Agent, ME);
    let inbox = shared(AssignedAndUnassigned);
    assert!(sees(&agent, &inbox, true, &[], &open(Some(ME))));
    assert!(sees(
        &agent,
        &inbox,
        true,
        &[],
        &conversation(Some(ME), Some(THEIR_TEAM), Status::Open)
    ));
    assert!(sees(&agent, &inbox, true, &[], &closed(Some(ME))));
}

#[test]
fn an_agent_sees_the_conversations_of_their_teams() {
    let agent = actor(Role::Agent, ME);
    let inbox = shared(AssignedAndUnassigned);
    let colleagues_in_my_team = conversation(Some(COLLEAGUE), Some(MY_TEAM), Status::Open);
    assert!(sees(
        &agent,
        &inbox,
        true,
        &[MY_TEAM],
        &colleagues_in_my_team
    ));
    assert!(sees(
        &agent,
        &inbox,
        true,
        &[THEIR_TEAM, MY_TEAM],
        &colleagues_in_my_team
    ));
    // Not in that team: the same conversation is a colleague's.
    assert!(!sees(
        &agent,
        &inbox,
        true,
        &[THEIR_TEAM],
        &colleagues_in_my_team
    ));
    assert!(!sees(&agent, &inbox, true, &[], &colleagues_in_my_team));
}

#[test]
fn an_agent_does_not_see_a_colleagues_conversation_when_visibility_is_assigned_and_unassigned() {
    let agent = actor(Role::Agent, ME);
    let inbox = shared(AssignedAndUnassigned);
    assert!(!sees(
        &agent,
        &inbox,
        true,
        &[MY_TEAM],
        &open(Some(COLLEAGUE))
    ));
    assert!(!sees(
        &agent,
        &inbox,
        true,
        &[MY_TEAM],
        &closed(Some(COLLEAGUE))
    ));
    assert!(!sees(
        &agent,
        &inbox,
        true,
        &[MY_TEAM],
        &conversation(Some(COLLEAGUE), Some(THEIR_TEAM), Status::Open)
    ));
}

#[test]
fn an_agent_sees_every_conversation_when_visibility_is_all() {
    let agent = actor(Role::Agent, ME);
    let inbox = shared(All);
    assert_eq!(inbox_scope(&agent, &inbox, true), InboxScope::Everything);
    for conversation in every_conversation() {
        assert!(
            sees(&agent, &inbox, true, &[], &conversation),
            "{conversation:?}"
        );
    }
}

#[test]
fn an_agent_who_is_not_a_member_sees_nothing_not_even_their_own() {
    let agent = actor(Role::Agent, ME);
    for visibility in [All, AssignedAndUnassigned] {
        let inbox = shared(visibility);
        assert_eq!(inbox_scope(&agent, &inbox, false), InboxScope::Nothing);
        for conversation in every_conversation() {
            assert!(
                !sees(&agent, &inbox, false, &[MY_TEAM], &conversation),
                "{conversation:?}"
            );
        }
    }
}

#[test]
fn a_private_inbox_is_visible_to_its_owner_whatever_their_role() {
    for role in ROLES {
        let owner = actor(role, ME);
        let inbox = private(ME);
        for is_member in [true, false] {
            assert_eq!(
                inbox_scope(&owner, &inbox, is_member),
                InboxScope::Everything
            );
        }
        for conversation in every_conversation() {
            assert!(
                sees(&owner, &inbox, true, &[], &conversation),
                "{role:?} {conversation:?}"
            );
        }
    }
}

#[test]
fn nobody_but_the_owner_sees_a_private_inbox_not_even_admins_and_managers() {
    let inbox = private(COLLEAGUE);
    for role in ROLES {
        let someone = actor(role, ME);
        for is_member in [true, false] {
            assert_eq!(
                inbox_scope(&someone, &inbox, is_member),
                InboxScope::Nothing,
                "{role:?}"
            );
            for conversation in every_conversation() {
                assert!(
                    !sees(&someone, &inbox, is_member, &[MY_TEAM], &conversation),
                    "{role:?} {conversation:?}"
                );
            }
        }
    }
}

#[test]
fn a_private_inbox_without_owner_is_visible_to_nobody() {
    let inbox = inbox(InboxKind::Private, None, All, true, true);
    for role in ROLES {
        assert_eq!(
            inbox_scope(&actor(role, ME), &inbox, true),
            InboxScope::Nothing
        );
    }
}

#[test]
fn a_conversation_of_another_organization_is_not_visible() {
    let foreign = Conversation {
        org_id: OTHER_ORG,
        ..open(None)
    };
    for role in ROLES {
        assert!(
            !sees(&actor(role, ME), &shared(All), true, &[], &foreign),
            "{role:?}"
        );
    }
    let my_private = Conversation {
        org_id: OTHER_ORG,
        ..open(Some(ME))
    };
    assert!(!sees(
        &actor(Role::Agent, ME),
        &private(ME),
        true,
        &[],
        &my_private
    ));
}

#[test]
fn a_conversation_is_only_judged_by_its_own_inbox() {
    let in_another_inbox = Conversation {
        inbox_id: OTHER_INBOX,
        ..open(None)
    };
    for role in ROLES {
        assert!(
            !sees(&actor(role, ME), &shared(All), true, &[], &in_another_inbox),
            "{role:?}"
        );
    }
}

#[test]
fn scope_admits_follows_the_scope() {
    let agent = actor(Role::Agent, ME);
    let my_teams = teams(&[MY_TEAM]);
    let colleague = Some(UserId(COLLEAGUE));
    assert!(!scope_admits(
        InboxScope::Nothing,
        &agent,
        &my_teams,
        None,
        None
    ));
    assert!(scope_admits(
        InboxScope::Everything,
        &agent,
        &my_teams,
        colleague,
        None
    ));
    let limited = InboxScope::AssignedAndUnassigned;
    assert!(scope_admits(limited, &agent, &my_teams, None, None));
    assert!(scope_admits(
        limited,
        &agent,
        &my_teams,
        Some(UserId(ME)),
        None
    ));
    assert!(scope_admits(
        limited,
        &agent,
        &my_teams,
        colleague,
        Some(TeamId(MY_TEAM))
    ));
    assert!(!scope_admits(
        limited,
        &agent,
        &my_teams,
        colleague,
        Some(TeamId(THEIR_TEAM))
    ));
    assert!(!scope_admits(limited, &agent, &my_teams, colleague, None));
}

// ---------------------------------------------------------------------------------------------
// Closed is final
// ---------------------------------------------------------------------------------------------

#[test]
fn an_open_conversation_takes_writes_and_a_closed_one_does_not() {
    assert_eq!(ensure_open(&open(None)), Ok(()));
    assert_eq!(ensure_open(&open(Some(ME))), Ok(()));
    assert_eq!(
        ensure_open(&closed(None)),
        Err(DomainError::ConversationClosed)
    );
    assert_eq!(
        ensure_open(&closed(Some(ME))),
        Err(DomainError::ConversationClosed)
    );
    assert!(matches!(
        ensure_open(&closed(None)).unwrap_err(),
        DomainError::ConversationClosed
    ));
}

// ---------------------------------------------------------------------------------------------
// Assignment
// ---------------------------------------------------------------------------------------------

#[test]
fn assignment_is_refused_when_assignment_mode_is_off_for_every_role() {
    for visibility in [All, AssignedAndUnassigned] {
        let inbox = inbox(InboxKind::Shared, None, visibility, false, true);
        for role in ROLES {
            let me = actor(role, ME);
            for current in [None, Some(ME), Some(COLLEAGUE)] {
                for target in [None, member(ME), member(COLLEAGUE)] {
                    let result = may_assign(&me, &inbox, &open(current), target);
                    assert_eq!(
                        result,
                        Err(DomainError::AssignmentDisabled),
                        "{role:?} {current:?}"
                    );
                }
            }
        }
    }
    let refused = may_assign(
        &actor(Role::Admin, ME),
        &inbox(InboxKind::Shared, None, All, false, true),
        &open(None),
        member(ME),
    );
    assert!(matches!(
        refused.unwrap_err(),
        DomainError::AssignmentDisabled
    ));
}

#[test]
fn a_closed_conversation_cannot_be_assigned_and_that_is_checked_first() {
    for assignment_mode in [true, false] {
        let inbox = inbox(InboxKind::Shared, None, All, assignment_mode, true);
        for role in ROLES {
            let me = actor(role, ME);
            for target in [None, member(ME), member(COLLEAGUE)] {
                assert_eq!(
                    may_assign(&me, &inbox, &closed(Some(COLLEAGUE)), target),
                    Err(DomainError::ConversationClosed),
                    "{role:?} assignment_mode={assignment_mode}"
                );
            }
        }
    }
}

#[test]
fn an_agent_may_claim_an_unassigned_conversation() {
    let agent = actor(Role::Agent, ME);
    for visibility in [All, AssignedAndUnassigned] {
        assert_eq!(
            may_assign(&agent, &shared(visibility), &open(None), member(ME)),
            Ok(())
        );
    }
}

#[test]
fn an_agent_may_claim_their_own_conversation_again() {
    let agent = actor(Role::Agent, ME);
    for visibility in [All, AssignedAndUnassigned] {
        assert_eq!(
            may_assign(&agent, &shared(visibility), &open(Some(ME)), member(ME)),
            Ok(())
        );
    }
}

#[test]
fn an_agent_may_take_a_colleagues_conversation_when_visibility_is_all() {
    let agent = actor(Role::Agent, ME);
    assert_eq!(
        may_assign(&agent, &shared(All), &open(Some(COLLEAGUE)), member(ME)),
        Ok(())
    );
}

#[test]
fn an_agent_cannot_take_a_colleagues_conversation_when_visibility_is_assigned_and_unassigned() {
    // They saw it unassigned a moment ago and a colleague took it first: a lost race (409).
    let agent = actor(Role::Agent, ME);
    let inbox = shared(AssignedAndUnassigned);
    assert_eq!(
        may_assign(&agent, &inbox, &open(Some(COLLEAGUE)), member(ME)),
        Err(DomainError::ConversationChanged)
    );
    // Even when the conversation belongs to a team the agent is in (they see it, but it is taken).
    let in_my_team = conversation(Some(COLLEAGUE), Some(MY_TEAM), Status::Open);
    assert_eq!(
        may_assign(&agent, &inbox, &in_my_team, member(ME)),
        Err(DomainError::ConversationChanged)
    );
}

#[test]
fn only_an_agents_claim_of_a_taken_conversation_is_a_lost_race() {
    let inbox = shared(AssignedAndUnassigned);
    let taken = open(Some(COLLEAGUE));
    let agent = actor(Role::Agent, ME);
    assert!(lost_claim(&agent, &inbox, &taken, Some(UserId(ME))));
    // Not a claim: handing it to someone else, or giving it back.
    assert!(!lost_claim(&agent, &inbox, &taken, Some(UserId(COLLEAGUE))));
    assert!(!lost_claim(&agent, &inbox, &taken, None));
    // Nothing was lost: it is free, or already theirs.
    assert!(!lost_claim(&agent, &inbox, &open(None), Some(UserId(ME))));
    assert!(!lost_claim(
        &agent,
        &inbox,
        &open(Some(ME)),
        Some(UserId(ME))
    ));
    // Where agents see everything they may take it over, and managers always may.
    assert!(!lost_claim(&agent, &shared(All), &taken, Some(UserId(ME))));
    let manager = actor(Role::Manager, ME);
    assert!(!lost_claim(&manager, &inbox, &taken, Some(UserId(ME))));
}

#[test]
fn a_guarded_send_goes_through_only_while_its_message_is_the_newest() {
    let mut item = open(None);
    item.last_message_id = Some(MessageId(7));
    assert_eq!(ensure_latest(&item, None), Ok(()));
    assert_eq!(ensure_latest(&item, Some(MessageId(7))), Ok(()));
    assert_eq!(
        ensure_latest(&item, Some(MessageId(6))),
        Err(DomainError::ConversationChanged)
    );
    item.last_message_id = None;
    assert_eq!(
        ensure_latest(&item, Some(MessageId(7))),
        Err(DomainError::ConversationChanged)
    );
}

#[test]
fn an_agent_may_unassign_themselves() {
    let agent = actor(Role::Agent, ME);
    for visibility in [All, AssignedAndUnassigned] {
        assert_eq!(
            may_assign(&agent, &shared(visibility), &open(Some(ME)), None),
            Ok(())
        );
    }
}

#[test]
fn an_agent_cannot_unassign_a_colleague() {
    let agent = actor(Role::Agent, ME);
    for visibility in [All, AssignedAndUnassigned] {
        assert_eq!(
            may_assign(&agent, &shared(visibility), &open(Some(COLLEAGUE)), None),
            Err(DomainError::Forbidden),
            "{visibility:?}"
        );
    }
}

#[test]
fn an_agent_cannot_unassign_an_unassigned_conversation() {
    let agent = actor(Role::Agent, ME);
    assert_eq!(
        may_assign(&agent, &shared(All), &open(None), None),
        Err(DomainError::Forbidden)
    );
}

#[test]
fn an_agent_never_assigns_someone_else() {
    let agent = actor(Role::Agent, ME);
    for visibility in [All, AssignedAndUnassigned] {
        for current in [None, Some(ME), Some(COLLEAGUE), Some(3)] {
            for target in [member(COLLEAGUE), member(3)] {
                let result = may_assign(&agent, &shared(visibility), &open(current), target);
                assert_eq!(
                    result,
                    Err(DomainError::Forbidden),
                    "{visibility:?} {current:?}"
                );
            }
        }
    }
    let refused = may_assign(&agent, &shared(All), &open(None), member(COLLEAGUE));
    assert!(matches!(refused.unwrap_err(), DomainError::Forbidden));
}

#[test]
fn managers_and_admins_assign_anyone_from_anyone() {
    for role in [Role::Admin, Role::Manager] {
        let supervisor = actor(role, ME);
        for visibility in [All, AssignedAndUnassigned] {
            let inbox = shared(visibility);
            for current in [None, Some(ME), Some(COLLEAGUE), Some(3)] {
                for target in [member(ME), member(COLLEAGUE), member(3)] {
                    assert_eq!(
                        may_assign(&supervisor, &inbox, &open(current), target),
                        Ok(()),
                        "{role:?} {visibility:?} {current:?} {target:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn managers_and_admins_unassign_anyone() {
    for role in [Role::Admin, Role::Manager] {
        let supervisor = actor(role, ME);
        for visibility in [All, AssignedAndUnassigned] {
            for current in [None, Some(ME), Some(COLLEAGUE)] {
                assert_eq!(
                    may_assign(&supervisor, &shared(visibility), &open(current), None),
                    Ok(()),
                    "{role:?} {visibility:?} {current:?}"
                );
            }
        }
    }
}

#[test]
fn the_assignee_must_be_a_member_of_the_inbox() {
    let outsider = |id| {
        Some(Target {
            user_id: UserId(id),
            is_inbox_member: false,
            in_team: true,
        })
    };
    for role in [Role::Admin, Role::Manager] {
        let result = may_assign(
            &actor(role, ME),
            &shared(All),
            &open(None),
            outsider(COLLEAGUE),
        );
        assert_eq!(result, Err(DomainError::AssigneeNotMember), "{role:?}");
    }
    // An agent claiming for themselves in an inbox they are not (or no longer) a member of.
    let result = may_assign(
        &actor(Role::Agent, ME),
        &shared(All),
        &open(None),
        outsider(ME),
    );
    assert_eq!(result, Err(DomainError::AssigneeNotMember));
    assert!(matches!(
        result.unwrap_err(),
        DomainError::AssigneeNotMember
    ));
    // Membership is judged before the team.
    let neither = Some(Target {
        user_id: UserId(COLLEAGUE),
        is_inbox_member: false,
        in_team: false,
    });
    let result = may_assign(
        &actor(Role::Manager, ME),
        &shared(All),
        &open(None),
        neither,
    );
    assert_eq!(result, Err(DomainError::AssigneeNotMember));
}

#[test]
fn the_assignee_must_be_in_the_requested_team() {
    let not_in_team = |id| {
        Some(Target {
            user_id: UserId(id),
            is_inbox_member: true,
            in_team: false,
        })
    };
    for role in [Role::Admin, Role::Manager] {
        let result = may_assign(
            &actor(role, ME),
            &shared(All),
            &open(None),
            not_in_team(COLLEAGUE),
        );
        assert_eq!(result, Err(DomainError::AssigneeNotInTeam), "{role:?}");
    }
    let result = may_assign(
        &actor(Role::Agent, ME),
        &shared(All),
        &open(None),
        not_in_team(ME),
    );
    assert_eq!(result, Err(DomainError::AssigneeNotInTeam));
    assert!(matches!(
        result.unwrap_err(),
        DomainError::AssigneeNotInTeam
    ));
}

// ---------------------------------------------------------------------------------------------
// Moving
// ---------------------------------------------------------------------------------------------

/// `may_move` from the shared fixture inbox to another shared inbox, mover a member of both.
fn move_shared(
    conversation: &Conversation,
    assignee_member_of_target: bool,
) -> Result<MoveOutcome, DomainError> {
    let source = shared(All);
    let target = elsewhere(shared(All));
    may_move(
        conversation,
        &source,
        &target,
        true,
        true,
        assignee_member_of_target,
    )
}

#[test]
fn moving_needs_allow_move_on_the_source_inbox() {
    let source = inbox(InboxKind::Shared, None, All, true, false);
    let target = elsewhere(shared(All));
    let result = may_move(&open(None), &source, &target, true, true, true);
    assert_eq!(result, Err(DomainError::MoveDisabled));
    assert!(matches!(result.unwrap_err(), DomainError::MoveDisabled));
    // The target's own setting does not matter.
    let source = shared(All);
    let target = elsewhere(inbox(InboxKind::Shared, None, All, true, false));
    assert!(may_move(&open(None), &source, &target, true, true, true).is_ok());
}

#[test]
fn a_closed_conversation_cannot_be_moved_and_that_is_checked_first() {
    assert_eq!(
        move_shared(&closed(None), true),
        Err(DomainError::ConversationClosed)
    );
    let source = inbox(InboxKind::Shared, None, All, true, false);
    let target = elsewhere(shared(All));
    assert_eq!(
        may_move(&closed(Some(ME)), &source, &target, false, false, false),
        Err(DomainError::ConversationClosed)
    );
}

#[test]
fn a_conversation_cannot_move_to_the_inbox_it_is_in() {
    let source = shared(All);
    let result = may_move(&open(None), &source, &source.clone(), true, true, true);
    assert!(matches!(
        result.unwrap_err(),
        DomainError::Validation { .. }
    ));
}

#[test]
fn conversations_do_not_move_in_or_out_of_a_private_inbox() {
    let shared_inbox = shared(All);
    let private_inbox = elsewhere(private(ME));
    let into_private = may_move(&open(None), &shared_inbox, &private_inbox, true, true, true);
    assert!(matches!(
        into_private.unwrap_err(),
        DomainError::Validation { .. }
    ));

    let private_source = private(ME);
    let shared_target = elsewhere(shared(All));
    let out_of_private = may_move(
        &open(None),
        &private_source,
        &shared_target,
        true,
        true,
        true,
    );
    assert!(matches!(
        out_of_private.unwrap_err(),
        DomainError::Validation { .. }
    ));
}

#[test]
fn the_mover_must_be_a_member_of_both_inboxes() {
    let source = shared(All);
    let target = elsewhere(shared(All));
    for (of_source, of_target) in [(false, true), (true, false), (false, false)] {
        let result = may_move(&open(None), &source, &target, of_source, of_target, true);
        match result {
            Err(DomainError::Validation(errors)) => {
                assert_eq!(errors.len(), 1);
                assert_eq!(errors[0].field, "inbox_id");
            }
            other => panic!("expected validation_failed, got {other:?}"),
        }
    }
    assert!(may_move(&open(None), &source, &target, true, true, true).is_ok());
}

#[test]
fn moving_clears_an_assignee_who_is_not_a_member_of_the_target() {
    assert_eq!(
        move_shared(&open(Some(COLLEAGUE)), false),
        Ok(MoveOutcome {
            clear_assignee: true
        })
    );
}

#[test]
fn moving_keeps_an_assignee_who_is_a_member_of_the_target() {
    assert_eq!(
        move_shared(&open(Some(COLLEAGUE)), true),
        Ok(MoveOutcome {
            clear_assignee: false
        })
    );
}

#[test]
fn moving_an_unassigned_conversation_clears_nothing() {
    for assignee_member_of_target in [true, false] {
        assert_eq!(
            move_shared(&open(None), assignee_member_of_target),
            Ok(MoveOutcome {
                clear_assignee: false
            })
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bulk actions, sending, starting conversations
// ---------------------------------------------------------------------------------------------

#[test]
fn only_admins_and_managers_act_in_bulk() {
    assert_eq!(may_act_in_bulk(&actor(Role::Admin, ME)), Ok(()));
    assert_eq!(may_act_in_bulk(&actor(Role::Manager, ME)), Ok(()));
    assert_eq!(
        may_act_in_bulk(&actor(Role::Agent, ME)),
        Err(DomainError::Forbidden)
    );
}

#[test]
fn an_opted_out_sms_contact_gets_no_message() {
    let result = may_send(ChannelType::Sms, MessageKind::Message, true);
    assert_eq!(result, Err(DomainError::ContactOptedOut));
    assert!(matches!(result.unwrap_err(), DomainError::ContactOptedOut));
}

#[test]
fn an_opted_out_sms_contact_gets_no_survey_either() {
    // The survey's link is texted to the customer: it is an outbound sms like any other.
    assert_eq!(
        may_send(ChannelType::Sms, MessageKind::Survey, true),
        Err(DomainError::ContactOptedOut)
    );
}

#[test]
fn only_replies_and_surveys_go_out_to_the_customer() {
    use MessageKind::{Activity, Message, Note, Survey};
    for direction in [Direction::Inbound, Direction::Outbound, Direction::Internal] {
        for kind in [Message, Note, Activity, Survey] {
            let expected = direction == Direction::Outbound && matches!(kind, Message | Survey);
            assert_eq!(
                reaches_customer(direction, kind),
                expected,
                "{direction:?} {kind:?}"
            );
        }
    }
    // A customer's answer to a survey is theirs: it never goes back out.
    assert!(!reaches_customer(Direction::Inbound, MessageKind::Survey));
    assert!(!reaches_customer(Direction::Outbound, MessageKind::Note));
}

#[test]
fn notes_are_fine_for_an_opted_out_sms_contact() {
    // Notes (and activity entries) never reach the customer.
    assert_eq!(may_send(ChannelType::Sms, MessageKind::Note, true), Ok(()));
    assert_eq!(
        may_send(ChannelType::Sms, MessageKind::Activity, true),
        Ok(())
    );
}

#[test]
fn an_sms_contact_who_has_not_opted_out_gets_messages() {
    for kind in [MessageKind::Message, MessageKind::Note, MessageKind::Survey] {
        assert_eq!(may_send(ChannelType::Sms, kind, false), Ok(()), "{kind:?}");
    }
}

#[test]
fn the_sms_opt_out_does_not_affect_other_channels() {
    for channel in ChannelType::ALL
        .iter()
        .copied()
        .filter(|c| *c != ChannelType::Sms)
    {
        for kind in [MessageKind::Message, MessageKind::Note, MessageKind::Survey] {
            for opted_out in [true, false] {
                assert_eq!(
                    may_send(channel, kind, opted_out),
                    Ok(()),
                    "{channel:?} {kind:?}"
                );
            }
        }
    }
}

#[test]
fn whatsapp_replies_only_within_24_hours_of_the_customer() {
    let wrote = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let later = |minutes: i64| wrote + chrono::TimeDelta::minutes(minutes);
    let reply = |channel, kind, at, now| may_reply_now(channel, kind, at, now);
    use ChannelType::*;
    use MessageKind::{Message, Note};
    assert_eq!(reply(Whatsapp, Message, Some(wrote), later(0)), Ok(()));
    assert_eq!(
        reply(Whatsapp, Message, Some(wrote), later(24 * 60 - 1)),
        Ok(())
    );
    assert_eq!(
        reply(Whatsapp, Message, Some(wrote), later(24 * 60)),
        Err(DomainError::ChannelWindowClosed)
    );
    assert_eq!(
        reply(Whatsapp, Message, None, later(0)),
        Err(DomainError::ChannelWindowClosed)
    );
    // Notes stay inside; other channels have no such window.
    assert_eq!(reply(Whatsapp, Note, Some(wrote), later(48 * 60)), Ok(()));
    for channel in [Sms, Facebook, Instagram, Webchat] {
        assert_eq!(reply(channel, Message, Some(wrote), later(48 * 60)), Ok(()));
    }
}

#[test]
fn the_business_cannot_start_a_whatsapp_conversation() {
    let result = may_initiate(ChannelType::Whatsapp);
    assert_eq!(result, Err(DomainError::ChannelCannotInitiate));
    assert!(matches!(
        result.unwrap_err(),
        DomainError::ChannelCannotInitiate
    ));
}

#[test]
fn the_business_may_start_conversations_on_every_other_channel() {
    for channel in ChannelType::ALL
        .iter()
        .copied()
        .filter(|c| *c != ChannelType::Whatsapp)
    {
        assert_eq!(may_initiate(channel), Ok(()), "{channel:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Consent keywords
// ---------------------------------------------------------------------------------------------

#[test]
fn stop_and_its_synonyms_opt_out() {
    for body in [
        "STOP",
        "stop",
        " Stop. ",
        "Stop!",
        "\tstop\n",
        "UNSUBSCRIBE",
        "unsubscribe",
        "CANCEL",
        "END",
        "QUIT",
        "quit",
    ] {
        assert_eq!(
            consent_keyword(body),
            Some(ConsentKeyword::OptOut),
            "{body:?}"
        );
    }
}

#[test]
fn start_and_unstop_opt_back_in() {
    for body in ["START", "start", " Start. ", "UNSTOP", "unstop"] {
        assert_eq!(
            consent_keyword(body),
            Some(ConsentKeyword::OptIn),
            "{body:?}"
        );
    }
}

#[test]
fn a_sentence_that_contains_a_keyword_is_not_a_keyword() {
    for body in [
        "stop it please",
        "please stop",
        "don't stop",
        "STOPP",
        "S T O P",
        "start again",
        "",
        "   ",
        ".",
    ] {
        assert_eq!(consent_keyword(body), None, "{body:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Outbound body and preview
// ---------------------------------------------------------------------------------------------

#[test]
fn the_appended_message_follows_a_blank_line() {
    assert_eq!(
        outbound_body("Hello", Some("Reply STOP to opt out")),
        "Hello\n\nReply STOP to opt out"
    );
    // Trailing whitespace of the body and around the appended text does not pile up.
    assert_eq!(
        outbound_body("Hello \n\n", Some("  Acme Co.\n")),
        "Hello\n\nAcme Co."
    );
}

#[test]
fn a_blank_appended_message_is_ignored() {
    for appended in [None, Some(""), Some("   "), Some("\n\t\n")] {
        assert_eq!(outbound_body("Hello", appended), "Hello", "{appended:?}");
    }
}

#[test]
fn the_preview_is_the_first_non_empty_line() {
    assert_eq!(preview("Hello\nsecond line"), "Hello");
    assert_eq!(preview("\n   \n  Hello there  \nsecond"), "Hello there");
    assert_eq!(preview("\r\nHi\r\nthere"), "Hi");
    assert_eq!(preview(""), "");
    assert_eq!(preview(" \n\t\n"), "");
}

#[test]
fn the_preview_is_at_most_140_characters() {
    let long = "a".repeat(200);
    assert_eq!(preview(&long), "a".repeat(140));
    let exact = "b".repeat(140);
    assert_eq!(preview(&exact), exact);
    assert_eq!(preview("short"), "short");
}

#[test]
fn the_preview_counts_characters_not_bytes() {
    // Two-byte, three-byte and four-byte characters: cut on a character, never inside one.
    for character in ["é", "€", "日", "😀"] {
        let long = character.repeat(200);
        let cut = preview(&long);
        assert_eq!(cut.chars().count(), 140, "{character}");
        assert_eq!(cut, character.repeat(140));
    }
    let mixed = format!("{}é😀 tail", "x".repeat(138));
    assert_eq!(preview(&mixed), format!("{}é😀", "x".repeat(138)));
}

#[test]
fn the_wire_spellings_round_trip() {
    for status in [Status::Open, Status::Closed] {
        assert_eq!(Status::parse(status.as_str()), Some(status));
    }
    for kind in [
        MessageKind::Message,
        MessageKind::Note,
        MessageKind::Activity,
        MessageKind::Survey,
    ] {
        assert_eq!(MessageKind::parse(kind.as_str()), Some(kind));
    }
    for direction in [Direction::Inbound, Direction::Outbound, Direction::Internal] {
        assert_eq!(Direction::parse(direction.as_str()), Some(direction));
    }
    for author in [AuthorType::User, AuthorType::Contact, AuthorType::System] {
        assert_eq!(AuthorType::parse(author.as_str()), Some(author));
    }
    for delivery in [
        DeliveryStatus::Queued,
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ] {
        assert_eq!(DeliveryStatus::parse(delivery.as_str()), Some(delivery));
    }
    assert_eq!(Status::parse("Open"), None);
    assert_eq!(MessageKind::parse("notes"), None);
}

#[test]
fn a_channel_reaches_the_first_address_of_its_kind() {
    let stored = [
        "facebook:42".to_string(),
        "+14155552671".to_string(),
        "+14155552672".to_string(),
        "instagram:7".to_string(),
    ];
    assert_eq!(
        first_address_on(ChannelType::Sms, &stored),
        Some("+14155552671")
    );
    assert_eq!(
        first_address_on(ChannelType::Whatsapp, &stored),
        Some("+14155552671")
    );
    assert_eq!(
        first_address_on(ChannelType::Facebook, &stored),
        Some("facebook:42")
    );
    assert_eq!(
        first_address_on(ChannelType::Instagram, &stored),
        Some("instagram:7")
    );
    assert_eq!(first_address_on(ChannelType::Webchat, &stored), None);
    assert_eq!(first_address_on(ChannelType::Sms, &[]), None);
}

#[test]
fn delivery_statuses_only_move_forward() {
    use DeliveryStatus::{Delivered, Queued, Sent};
    assert!(Queued.replaced_by(Sent));
    assert!(
        Queued.replaced_by(Delivered),
        "a delivery report may overtake the worker"
    );
    assert!(Sent.replaced_by(Delivered));
    assert!(
        !Delivered.replaced_by(Sent),
        "a late sent does not undo delivered"
    );
    assert!(!Sent.replaced_by(Queued));
    assert!(!Delivered.replaced_by(Queued));
    for status in DeliveryStatus::ALL {
        assert!(
            !status.replaced_by(status),
            "a repeat of {status:?} changes nothing"
        );
    }
}

#[test]
fn failed_is_final_and_never_undoes_a_delivery() {
    use DeliveryStatus::{Delivered, Failed, Queued, Sent};
    assert!(Queued.replaced_by(Failed));
    assert!(Sent.replaced_by(Failed));
    assert!(!Delivered.replaced_by(Failed));
    for next in DeliveryStatus::ALL {
        assert!(
            !Failed.replaced_by(next),
            "failed stays failed, not {next:?}"
        );
    }
}

#[test]
fn the_replaced_ones_are_exactly_those_a_report_replaces() {
    use DeliveryStatus::{Delivered, Failed, Queued, Sent};
    assert_eq!(DeliveryStatus::replaced_ones(Queued), []);
    assert_eq!(DeliveryStatus::replaced_ones(Sent), [Queued]);
    assert_eq!(DeliveryStatus::replaced_ones(Delivered), [Queued, Sent]);
    assert_eq!(DeliveryStatus::replaced_ones(Failed), [Queued, Sent]);
    for next in DeliveryStatus::ALL {
        for current in DeliveryStatus::ALL {
            assert_eq!(
                DeliveryStatus::replaced_ones(next).contains(&current),
                current.replaced_by(next)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn role() -> impl Strategy<Value = Role> {
        prop::sample::select(Role::ALL.to_vec())
    }

    fn visibility() -> impl Strategy<Value = AgentVisibility> {
        prop::sample::select(AgentVisibility::ALL.to_vec())
    }

    fn kind() -> impl Strategy<Value = InboxKind> {
        prop::sample::select(InboxKind::ALL.to_vec())
    }

    fn status() -> impl Strategy<Value = Status> {
        prop::sample::select(vec![Status::Open, Status::Closed])
    }

    /// A user among four, so that coincidences (owner = actor = assignee) are frequent.
    fn user() -> impl Strategy<Value = i64> {
        1i64..=4
    }

    /// A team among four.
    fn team() -> impl Strategy<Value = i64> {
        1i64..=4
    }

    fn target() -> impl Strategy<Value = Option<Target>> {
        prop::option::of((user(), any::<bool>(), any::<bool>()).prop_map(
            |(id, is_inbox_member, in_team)| Target {
                user_id: UserId(id),
                is_inbox_member,
                in_team,
            },
        ))
    }

    /// An inbox with every setting generated.
    fn any_inbox() -> impl Strategy<Value = Inbox> {
        (
            kind(),
            prop::option::of(user()),
            visibility(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(kind, owner, visibility, assignment_mode, allow_move)| {
                inbox(kind, owner, visibility, assignment_mode, allow_move)
            })
    }

    proptest! {
        /// The list (inbox_scope + scope_admits) and the single GET (may_see) agree.
        #[test]
        fn the_list_and_the_single_get_agree(
            role in role(),
            me in user(),
            is_member in any::<bool>(),
            inbox in any_inbox(),
            my_teams in prop::collection::vec(team(), 0..4),
            assignee in prop::option::of(user()),
            team in prop::option::of(team()),
            status in status(),
        ) {
            let actor = actor(role, me);
            let my_teams = teams(&my_teams);
            let conversation = conversation(assignee, team, status);
            let single = may_see(&actor, &inbox, is_member, &my_teams, &conversation);
            let scope = inbox_scope(&actor, &inbox, is_member);
            let listed = scope_admits(scope, &actor, &my_teams, conversation.assignee_id, conversation.team_id);
            prop_assert_eq!(single, listed);
        }

        /// Admins never see a private inbox they do not own, member or not.
        #[test]
        fn admins_never_see_a_private_inbox_they_do_not_own(
            me in user(),
            owner in prop::option::of(user()),
            is_member in any::<bool>(),
            visibility in visibility(),
            my_teams in prop::collection::vec(team(), 0..4),
            assignee in prop::option::of(user()),
            team in prop::option::of(team()),
            status in status(),
        ) {
            prop_assume!(owner != Some(me));
            let admin = actor(Role::Admin, me);
            let inbox = inbox(InboxKind::Private, owner, visibility, true, true);
            prop_assert_eq!(inbox_scope(&admin, &inbox, is_member), InboxScope::Nothing);
            let conversation = conversation(assignee, team, status);
            prop_assert!(!may_see(&admin, &inbox, is_member, &teams(&my_teams), &conversation));
        }

        /// Whatever the caller, an accepted assignee is a member of the inbox (and of the team).
        #[test]
        fn an_accepted_assignee_is_an_inbox_member(
            role in role(),
            me in user(),
            inbox in any_inbox(),
            current in prop::option::of(user()),
            status in status(),
            target in target(),
        ) {
            let result = may_assign(&actor(role, me), &inbox, &conversation(current, None, status), target);
            if let (Ok(()), Some(target)) = (&result, target) {
                prop_assert!(target.is_inbox_member);
                prop_assert!(target.in_team);
            }
        }

        /// An agent never assigns a conversation to somebody else.
        #[test]
        fn an_agent_never_assigns_someone_else(
            me in user(),
            other in user(),
            inbox in any_inbox(),
            current in prop::option::of(user()),
            status in status(),
            is_inbox_member in any::<bool>(),
            in_team in any::<bool>(),
        ) {
            prop_assume!(other != me);
            let target = Target { user_id: UserId(other), is_inbox_member, in_team };
            let result = may_assign(&actor(Role::Agent, me), &inbox, &conversation(current, None, status), Some(target));
            prop_assert!(result.is_err(), "{:?}", result);
        }

        /// With assignment mode off, nobody assigns or unassigns anything.
        #[test]
        fn assignment_mode_off_never_allows_an_assignment(
            role in role(),
            me in user(),
            inbox in any_inbox(),
            current in prop::option::of(user()),
            status in status(),
            target in target(),
        ) {
            let mut inbox = inbox;
            inbox.settings.assignment_mode = false;
            let result = may_assign(&actor(role, me), &inbox, &conversation(current, None, status), target);
            let expected = match status {
                Status::Open => DomainError::AssignmentDisabled,
                Status::Closed => DomainError::ConversationClosed,
            };
            prop_assert_eq!(result, Err(expected));
        }

        /// A closed conversation is final: no assignment, no move, nothing written.
        #[test]
        fn a_closed_conversation_refuses_everything(
            role in role(),
            me in user(),
            source in any_inbox(),
            target_inbox in any_inbox(),
            same_inbox in any::<bool>(),
            current in prop::option::of(user()),
            team in prop::option::of(team()),
            target in target(),
            memberships in any::<(bool, bool, bool)>(),
        ) {
            let conversation = conversation(current, team, Status::Closed);
            let target_inbox = if same_inbox { target_inbox } else { elsewhere(target_inbox) };
            let (of_source, of_target, assignee_of_target) = memberships;
            prop_assert_eq!(ensure_open(&conversation), Err(DomainError::ConversationClosed));
            prop_assert_eq!(
                may_assign(&actor(role, me), &source, &conversation, target),
                Err(DomainError::ConversationClosed)
            );
            prop_assert_eq!(
                may_move(&conversation, &source, &target_inbox, of_source, of_target, assignee_of_target),
                Err(DomainError::ConversationClosed)
            );
        }

        /// An agent never claims a conversation they cannot see (given that a private inbox
        /// has its owner as only member, as the administration rules guarantee).
        #[test]
        fn an_agent_only_claims_what_they_see(
            me in user(),
            is_member in any::<bool>(),
            inbox in any_inbox(),
            my_teams in prop::collection::vec(team(), 0..4),
            current in prop::option::of(user()),
            team in prop::option::of(team()),
            in_team in any::<bool>(),
        ) {
            let is_member = is_member
                && (inbox.settings.kind == InboxKind::Shared || inbox.settings.owner_id == Some(UserId(me)));
            let agent = actor(Role::Agent, me);
            let conversation = conversation(current, team, Status::Open);
            let claim = Target { user_id: UserId(me), is_inbox_member: is_member, in_team };
            if may_assign(&agent, &inbox, &conversation, Some(claim)).is_ok() {
                prop_assert!(may_see(&agent, &inbox, is_member, &teams(&my_teams), &conversation));
            }
        }
    }
}
