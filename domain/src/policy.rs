//! Who may do what in administration (API.md, Administration and Roles). Each function
//! answers `Ok(())` or the refusal the client sees: `NotFound` where the caller may not even
//! know the thing exists, `Forbidden` where they may see it but not change it.

use crate::error::DomainError;
use crate::model::{Actor, Inbox, InboxKind, Role, User};

fn require(allowed: bool) -> Result<(), DomainError> {
    if allowed {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

fn is_admin(actor: &Actor) -> bool {
    actor.role == Role::Admin
}

fn is_supervisor(actor: &Actor) -> bool {
    matches!(actor.role, Role::Admin | Role::Manager)
}

/// The user directory: admins, and managers who assign and build teams.
/// How long a refresh token just traded for a new pair still trades, by default: two tabs
/// refreshing the same session at once both stay signed in, as mature identity providers
/// allow. Operators may shorten it.
pub const REFRESH_REUSE_GRACE_SECONDS: i64 = 10;

/// Whether presenting a spent refresh token is a concurrent refresh (within `grace` after it
/// was spent) rather than a copied token being replayed (which revokes the session).
pub fn refresh_reuse_is_concurrent(
    spent_at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
    grace: chrono::Duration,
) -> bool {
    let age = now - spent_at;
    // A second of clock skew between instances still counts as "at once".
    age >= -chrono::Duration::seconds(1) && age <= grace
}

pub fn may_list_users(actor: &Actor) -> Result<(), DomainError> {
    require(is_supervisor(actor))
}

/// Creating users and changing their role, password or access.
pub fn may_manage_users(actor: &Actor) -> Result<(), DomainError> {
    require(is_admin(actor))
}

/// An admin may not lock themselves out: no self-deactivation, no self-demotion.
pub fn may_change_user(
    actor: &Actor,
    target: &User,
    new_role: Option<Role>,
    new_active: Option<bool>,
) -> Result<(), DomainError> {
    may_manage_users(actor)?;
    if target.id == actor.user_id {
        if new_active == Some(false) {
            return Err(DomainError::invalid(
                "active",
                "you cannot deactivate yourself",
            ));
        }
        if new_role.is_some_and(|role| role != Role::Admin) {
            return Err(DomainError::invalid(
                "role",
                "you cannot take away your own admin role",
            ));
        }
    }
    Ok(())
}

/// Teams (agent groups) are built by admins and managers.
pub fn may_manage_teams(actor: &Actor) -> Result<(), DomainError> {
    require(is_supervisor(actor))
}

pub fn may_create_inbox(actor: &Actor) -> Result<(), DomainError> {
    require(is_admin(actor))
}

/// Admins see every inbox's settings; everyone else the inboxes they belong to. A private
/// inbox belongs to its owner alone.
pub fn may_see_inbox(actor: &Actor, inbox: &Inbox, is_member: bool) -> Result<(), DomainError> {
    let visible = match inbox.settings.kind {
        _ if is_admin(actor) => true,
        InboxKind::Private => inbox.settings.owner_id == Some(actor.user_id),
        InboxKind::Shared => is_member,
    };
    if visible {
        Ok(())
    } else {
        Err(DomainError::NotFound)
    }
}

/// Settings: admins, and the managers of that inbox.
pub fn may_update_inbox(actor: &Actor, inbox: &Inbox, is_member: bool) -> Result<(), DomainError> {
    may_see_inbox(actor, inbox, is_member)?;
    require(is_admin(actor) || (actor.role == Role::Manager && is_member))
}

/// Membership of an inbox is the admin's to give. A private inbox has its owner only.
pub fn may_add_inbox_member(actor: &Actor, inbox: &Inbox, user: &User) -> Result<(), DomainError> {
    require(is_admin(actor))?;
    if inbox.settings.kind == InboxKind::Private && inbox.settings.owner_id != Some(user.id) {
        return Err(DomainError::invalid(
            "user_id",
            "a private inbox has its owner as only member",
        ));
    }
    Ok(())
}

pub fn may_remove_inbox_member(actor: &Actor) -> Result<(), DomainError> {
    require(is_admin(actor))
}

/// Channels carry the inbound secret and the outbound hook: admins only.
pub fn may_create_channel(
    actor: &Actor,
    inbox: &Inbox,
    is_member: bool,
) -> Result<(), DomainError> {
    may_see_inbox(actor, inbox, is_member)?;
    require(is_admin(actor))
}

/// Canned responses of an inbox: written by its admins and managers, read by its members.
pub fn may_manage_canned_responses(
    actor: &Actor,
    inbox: &Inbox,
    is_member: bool,
) -> Result<(), DomainError> {
    may_update_inbox(actor, inbox, is_member)
}

/// The organization's tags are created, renamed and deleted by admins and managers; anyone
/// may put them on the conversations they work.
pub fn may_manage_tags(actor: &Actor) -> Result<(), DomainError> {
    require(is_supervisor(actor))
}

/// Merging, deleting and importing contacts touch the whole team's directory and history:
/// supervisors. Every user may look contacts up, add and edit them.
pub fn may_curate_contacts(actor: &Actor) -> Result<(), DomainError> {
    require(is_supervisor(actor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::*;
    use crate::model::{InboxSettings, UserStatus};
    use chrono::Utc;

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: UserId(1),
            org_id: OrgId(1),
            role,
        }
    }

    fn inbox(kind: InboxKind, owner: Option<i64>) -> Inbox {
        Inbox {
            id: InboxId(7),
            org_id: OrgId(1),
            name: "Support".into(),
            settings: InboxSettings {
                kind,
                owner_id: owner.map(UserId),
                ..InboxSettings::default()
            },
            created_at: Utc::now(),
        }
    }

    fn user(id: i64, role: Role) -> User {
        User {
            id: UserId(id),
            org_id: OrgId(1),
            email: format!("u{id}@example.com"),
            name: "U".into(),
            role,
            active: true,
            status: UserStatus::Offline,
            status_message: None,
            created_at: Utc::now(),
            token_epoch: 0,
        }
    }

    #[test]
    fn only_admins_manage_users_and_supervisors_list_them() {
        assert!(may_manage_users(&actor(Role::Admin)).is_ok());
        assert_eq!(
            may_manage_users(&actor(Role::Manager)),
            Err(DomainError::Forbidden)
        );
        assert!(may_list_users(&actor(Role::Manager)).is_ok());
        assert_eq!(
            may_list_users(&actor(Role::Agent)),
            Err(DomainError::Forbidden)
        );
    }

    #[test]
    fn an_admin_cannot_lock_themselves_out() {
        let me = actor(Role::Admin);
        let myself = user(1, Role::Admin);
        assert!(matches!(
            may_change_user(&me, &myself, None, Some(false)).unwrap_err(),
            DomainError::Validation { .. }
        ));
        assert!(matches!(
            may_change_user(&me, &myself, Some(Role::Agent), None).unwrap_err(),
            DomainError::Validation { .. }
        ));
        assert!(may_change_user(&me, &myself, Some(Role::Admin), Some(true)).is_ok());
        assert!(
            may_change_user(&me, &user(2, Role::Admin), Some(Role::Agent), Some(false)).is_ok()
        );
    }

    #[test]
    fn non_members_do_not_know_an_inbox_exists() {
        let shared = inbox(InboxKind::Shared, None);
        assert_eq!(
            may_see_inbox(&actor(Role::Agent), &shared, false),
            Err(DomainError::NotFound)
        );
        assert_eq!(
            may_see_inbox(&actor(Role::Manager), &shared, false),
            Err(DomainError::NotFound)
        );
        assert!(may_see_inbox(&actor(Role::Agent), &shared, true).is_ok());
        assert!(may_see_inbox(&actor(Role::Admin), &shared, false).is_ok());
    }

    #[test]
    fn a_private_inbox_is_its_owners() {
        let mine = inbox(InboxKind::Private, Some(1));
        let theirs = inbox(InboxKind::Private, Some(2));
        assert!(may_see_inbox(&actor(Role::Agent), &mine, false).is_ok());
        assert_eq!(
            may_see_inbox(&actor(Role::Manager), &theirs, true),
            Err(DomainError::NotFound)
        );
        assert!(may_add_inbox_member(&actor(Role::Admin), &theirs, &user(2, Role::Agent)).is_ok());
        assert!(matches!(
            may_add_inbox_member(&actor(Role::Admin), &theirs, &user(3, Role::Agent)).unwrap_err(),
            DomainError::Validation { .. }
        ));
    }

    #[test]
    fn inbox_settings_belong_to_admins_and_the_inbox_managers() {
        let shared = inbox(InboxKind::Shared, None);
        assert!(may_update_inbox(&actor(Role::Admin), &shared, false).is_ok());
        assert!(may_update_inbox(&actor(Role::Manager), &shared, true).is_ok());
        assert_eq!(
            may_update_inbox(&actor(Role::Agent), &shared, true),
            Err(DomainError::Forbidden)
        );
        assert_eq!(
            may_update_inbox(&actor(Role::Manager), &shared, false),
            Err(DomainError::NotFound)
        );
        assert_eq!(
            may_create_channel(&actor(Role::Manager), &shared, true),
            Err(DomainError::Forbidden)
        );
        assert!(may_manage_canned_responses(&actor(Role::Manager), &shared, true).is_ok());
        assert_eq!(
            may_manage_tags(&actor(Role::Agent)),
            Err(DomainError::Forbidden)
        );
        assert!(may_curate_contacts(&actor(Role::Manager)).is_ok());
        assert_eq!(
            may_curate_contacts(&actor(Role::Agent)),
            Err(DomainError::Forbidden)
        );
        assert!(may_manage_tags(&actor(Role::Manager)).is_ok());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn role() -> impl Strategy<Value = Role> {
            prop::sample::select(Role::ALL.to_vec())
        }

        proptest! {
            /// Whoever may change an inbox may also see it: no 403 on something invisible.
            #[test]
            fn updating_implies_seeing(r in role(), private in any::<bool>(), owner in 1i64..4, member in any::<bool>()) {
                let kind = if private { InboxKind::Private } else { InboxKind::Shared };
                let inbox = inbox(kind, private.then_some(owner));
                let a = actor(r);
                if may_update_inbox(&a, &inbox, member).is_ok() {
                    prop_assert!(may_see_inbox(&a, &inbox, member).is_ok());
                }
                if may_see_inbox(&a, &inbox, member).is_err() {
                    prop_assert_eq!(may_update_inbox(&a, &inbox, member), Err(DomainError::NotFound));
                }
            }

            /// Admins see every inbox, whatever its kind or their membership.
            #[test]
            fn admins_see_every_inbox(private in any::<bool>(), owner in 1i64..4, member in any::<bool>()) {
                let kind = if private { InboxKind::Private } else { InboxKind::Shared };
                prop_assert!(may_see_inbox(&actor(Role::Admin), &inbox(kind, Some(owner)), member).is_ok());
            }
        }
    }
}
