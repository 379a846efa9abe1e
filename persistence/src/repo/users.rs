//! Users and their refresh tokens.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use domain::{OrgId, Role, User, UserId, UserStatus};

use super::{Page, parse_enum};
use crate::schema::{refresh_tokens, users};
use crate::{DbConnection, StoreError, from_db, now, to_db};

type UserRow = (
    i64,
    i64,
    String,
    String,
    String,
    bool,
    String,
    Option<String>,
    NaiveDateTime,
    i64,
);

const USER_COLUMNS: (
    users::id,
    users::org_id,
    users::email,
    users::name,
    users::role,
    users::active,
    users::status,
    users::status_message,
    users::created_at,
    users::token_epoch,
) = (
    users::id,
    users::org_id,
    users::email,
    users::name,
    users::role,
    users::active,
    users::status,
    users::status_message,
    users::created_at,
    users::token_epoch,
);

fn to_user(row: UserRow) -> Result<User, StoreError> {
    let (id, org_id, email, name, role, active, status, status_message, created_at, token_epoch) =
        row;
    Ok(User {
        id: UserId(id),
        org_id: OrgId(org_id),
        email,
        name,
        role: parse_enum(&role, Role::parse, "role")?,
        active,
        status: parse_enum(&status, UserStatus::parse, "status")?,
        status_message,
        created_at: from_db(created_at),
        token_epoch,
    })
}

pub struct NewUser<'a> {
    pub org_id: OrgId,
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
}

pub fn insert(conn: &mut DbConnection, new: NewUser<'_>) -> Result<User, StoreError> {
    let at = to_db(now());
    let row: UserRow = diesel::insert_into(users::table)
        .values((
            users::org_id.eq(new.org_id.get()),
            users::email.eq(new.email),
            users::name.eq(new.name),
            users::role.eq(new.role.as_str()),
            users::password_hash.eq(new.password_hash),
            users::active.eq(true),
            users::status.eq(UserStatus::Offline.as_str()),
            users::created_at.eq(at),
            users::updated_at.eq(at),
        ))
        .returning(USER_COLUMNS)
        .get_result(conn)?;
    to_user(row)
}

pub fn count_all(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(users::table.count().get_result(conn)?)
}

/// A user of the organization, or `None` (unknown, or another tenant's).
pub fn get(conn: &mut DbConnection, org: OrgId, id: UserId) -> Result<Option<User>, StoreError> {
    users::table
        .filter(users::id.eq(id.get()).and(users::org_id.eq(org.get())))
        .select(USER_COLUMNS)
        .first::<UserRow>(conn)
        .optional()?
        .map(to_user)
        .transpose()
}

/// The user an access token names, and whether its sign-in (refresh-token family) is still
/// open: it is until a sign-out or a revocation ends it. An empty `family` (a token from
/// before sign-ins were named) counts as open. One statement.
pub fn get_signed_in(
    conn: &mut DbConnection,
    org: OrgId,
    id: UserId,
    family: &str,
) -> Result<Option<(User, bool)>, StoreError> {
    let open = diesel::dsl::exists(
        refresh_tokens::table.filter(
            refresh_tokens::family
                .eq(family)
                .and(refresh_tokens::user_id.eq(id.get()))
                .and(refresh_tokens::revoked_at.is_null()),
        ),
    );
    let row: Option<(UserRow, bool)> = users::table
        .filter(users::id.eq(id.get()).and(users::org_id.eq(org.get())))
        .select((USER_COLUMNS, open))
        .first(conn)
        .optional()?;
    row.map(|(user, open)| Ok((to_user(user)?, open || family.is_empty())))
        .transpose()
}

/// Locks the user's row until the transaction ends (PostgreSQL `FOR NO KEY UPDATE`; SQLite's
/// single writer holds it already), for changes bounded per user, such as their pins.
pub fn lock(conn: &mut DbConnection, org: OrgId, id: UserId) -> Result<(), StoreError> {
    let query = users::table
        .filter(users::id.eq(id.get()).and(users::org_id.eq(org.get())))
        .select(users::id);
    let found: Option<i64> = first_locked!(conn, query)?;
    found
        .map(drop)
        .ok_or(StoreError::Domain(domain::DomainError::NotFound))
}

/// Several users of the organization at once (one query), in id order.
pub fn get_many(
    conn: &mut DbConnection,
    org: OrgId,
    ids: &[UserId],
) -> Result<Vec<User>, StoreError> {
    let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    users::table
        .filter(users::org_id.eq(org.get()).and(users::id.eq_any(ids)))
        .order(users::id)
        .select(USER_COLUMNS)
        .load::<UserRow>(conn)?
        .into_iter()
        .map(to_user)
        .collect()
}

/// Accounts of one address kept at most per sign-in (an address is unique per organization,
/// so this is how many organizations one person may sign in to with it).
pub const LOGIN_CANDIDATES: i64 = 20;

/// The users with this e-mail (one per organization), with their password hashes and
/// organization names, for sign-in; only `org`'s when it is given.
pub fn find_for_login(
    conn: &mut DbConnection,
    email: &str,
    org: Option<OrgId>,
) -> Result<Vec<(User, String, String)>, StoreError> {
    let mut query = users::table
        .inner_join(crate::schema::organizations::table)
        .filter(users::email.eq(email))
        .select((
            USER_COLUMNS,
            users::password_hash,
            crate::schema::organizations::name,
        ))
        .order(users::id)
        .limit(LOGIN_CANDIDATES)
        .into_boxed();
    if let Some(org) = org {
        query = query.filter(users::org_id.eq(org.get()));
    }
    query
        .load::<(UserRow, String, String)>(conn)?
        .into_iter()
        .map(|(user, hash, org_name)| Ok((to_user(user)?, hash, org_name)))
        .collect()
}

pub fn list(
    conn: &mut DbConnection,
    org: OrgId,
    after: Option<i64>,
    limit: i64,
) -> Result<Page<User>, StoreError> {
    let rows: Vec<UserRow> = users::table
        .filter(
            users::org_id
                .eq(org.get())
                .and(users::id.gt(after.unwrap_or(0))),
        )
        .order(users::id)
        .limit(limit + 1)
        .select(USER_COLUMNS)
        .load(conn)?;
    let users = rows
        .into_iter()
        .map(to_user)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_overfetch(users, limit))
}

#[derive(Default)]
pub struct UserChanges {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    pub password_hash: Option<String>,
    pub status: Option<UserStatus>,
    pub status_message: Option<Option<String>>,
}

#[derive(AsChangeset)]
#[diesel(table_name = users)]
struct UserChangeset {
    name: Option<String>,
    role: Option<String>,
    active: Option<bool>,
    password_hash: Option<String>,
    status: Option<String>,
    status_message: Option<Option<String>>,
    updated_at: NaiveDateTime,
}

pub fn update(
    conn: &mut DbConnection,
    org: OrgId,
    id: UserId,
    changes: UserChanges,
) -> Result<Option<User>, StoreError> {
    // A deactivation or a new password ends every access token issued before it.
    let changes_end_access_tokens =
        changes.active == Some(false) || changes.password_hash.is_some();
    let changeset = UserChangeset {
        name: changes.name,
        role: changes.role.map(|role| role.as_str().to_string()),
        active: changes.active,
        password_hash: changes.password_hash,
        status: changes.status.map(|status| status.as_str().to_string()),
        status_message: changes.status_message,
        updated_at: to_db(now()),
    };
    let target = users::table.filter(users::id.eq(id.get()).and(users::org_id.eq(org.get())));
    if changes_end_access_tokens {
        diesel::update(target)
            .set(users::token_epoch.eq(users::token_epoch + 1))
            .execute(conn)?;
    }
    diesel::update(target)
        .set(changeset)
        .returning(USER_COLUMNS)
        .get_result::<UserRow>(conn)
        .optional()?
        .map(to_user)
        .transpose()
}

/// A stored refresh token (only its hash is kept).
pub struct RefreshToken {
    pub id: i64,
    pub user_id: UserId,
    pub family: String,
    pub expires_at: DateTime<Utc>,
    /// When it was traded for a new pair, if it was.
    pub used_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

pub fn insert_refresh_token(
    conn: &mut DbConnection,
    user: UserId,
    family: &str,
    token_hash: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::user_id.eq(user.get()),
            refresh_tokens::family.eq(family),
            refresh_tokens::token_hash.eq(token_hash),
            refresh_tokens::created_at.eq(to_db(now())),
            refresh_tokens::expires_at.eq(to_db(expires_at)),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn find_refresh_token(
    conn: &mut DbConnection,
    token_hash: &str,
) -> Result<Option<RefreshToken>, StoreError> {
    type Row = (
        i64,
        i64,
        String,
        NaiveDateTime,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
    );
    let row: Option<Row> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select((
            refresh_tokens::id,
            refresh_tokens::user_id,
            refresh_tokens::family,
            refresh_tokens::expires_at,
            refresh_tokens::used_at,
            refresh_tokens::revoked_at,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(
        |(id, user_id, family, expires_at, used_at, revoked_at)| RefreshToken {
            id,
            user_id: UserId(user_id),
            family,
            expires_at: from_db(expires_at),
            used_at: used_at.map(from_db),
            revoked: revoked_at.is_some(),
        },
    ))
}

/// Spends a refresh token. `false` when someone spent it first (a concurrent reuse).
pub fn spend_refresh_token(conn: &mut DbConnection, id: i64) -> Result<bool, StoreError> {
    let spent = diesel::update(
        refresh_tokens::table.filter(
            refresh_tokens::id
                .eq(id)
                .and(refresh_tokens::used_at.is_null()),
        ),
    )
    .set(refresh_tokens::used_at.eq(to_db(now())))
    .execute(conn)?;
    Ok(spent == 1)
}

/// Locks every refresh token of the sign-in until the transaction ends (PostgreSQL `FOR NO KEY
/// UPDATE`; SQLite's single writer holds it already): a refresh and a sign-out of one sign-in
/// then take turns, and each statement after the lock sees what the other committed (a
/// token the refresh added, a revocation the sign-out made).
pub fn lock_refresh_family(conn: &mut DbConnection, family: &str) -> Result<(), StoreError> {
    let query = refresh_tokens::table
        .filter(refresh_tokens::family.eq(family))
        .order(refresh_tokens::id)
        .select(refresh_tokens::id);
    let _locked: Vec<i64> = all_locked!(conn, query)?;
    Ok(())
}

pub fn revoke_refresh_family(conn: &mut DbConnection, family: &str) -> Result<(), StoreError> {
    diesel::update(
        refresh_tokens::table.filter(
            refresh_tokens::family
                .eq(family)
                .and(refresh_tokens::revoked_at.is_null()),
        ),
    )
    .set(refresh_tokens::revoked_at.eq(to_db(now())))
    .execute(conn)?;
    Ok(())
}

/// Signs a user out everywhere (deactivation, password change).
pub fn revoke_user_refresh_tokens(conn: &mut DbConnection, user: UserId) -> Result<(), StoreError> {
    diesel::update(
        refresh_tokens::table.filter(
            refresh_tokens::user_id
                .eq(user.get())
                .and(refresh_tokens::revoked_at.is_null()),
        ),
    )
    .set(refresh_tokens::revoked_at.eq(to_db(now())))
    .execute(conn)?;
    Ok(())
}

/// A user by id alone, for a refresh token (which names no tenant).
pub fn get_any(conn: &mut DbConnection, id: UserId) -> Result<Option<User>, StoreError> {
    users::table
        .find(id.get())
        .select(USER_COLUMNS)
        .first::<UserRow>(conn)
        .optional()?
        .map(to_user)
        .transpose()
}
