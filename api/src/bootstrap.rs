//! First start and `create-admin`: making organizations and their admins.

use domain::{Role, validate};
use persistence::repo::{orgs, users};
use persistence::{Store, StoreError};

use crate::auth::{hash_password, random_token};
use crate::config::Config;
use crate::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Api(String),
}

impl From<ApiError> for BootstrapError {
    fn from(error: ApiError) -> Self {
        BootstrapError::Api(error.to_string())
    }
}

/// What `create_admin` did.
pub struct Created {
    pub org_name: String,
    pub org_created: bool,
    pub email: String,
}

/// Creates an admin in the named organization, creating the organization if needed.
pub fn create_admin(
    store: &Store,
    org: &str,
    email: &str,
    password: &str,
    name: &str,
) -> Result<Created, BootstrapError> {
    let org = validate::text("org", org, domain::validate::limits::NAME)
        .map_err(|error| BootstrapError::Invalid(format!("--org {}", error.message)))?;
    let email = validate::email("email", email)
        .map_err(|error| BootstrapError::Invalid(format!("--email {}", error.message)))?;
    validate::password("password", password)
        .map_err(|error| BootstrapError::Invalid(format!("--password {}", error.message)))?;
    let name = validate::text("name", name, domain::validate::limits::NAME)
        .map_err(|error| BootstrapError::Invalid(format!("--name {}", error.message)))?;
    let password_hash = hash_password(password)?;
    store
        .write(|conn| {
            let (organization, org_created) = match orgs::find_by_name(conn, &org)? {
                Some(existing) => (existing, false),
                None => (orgs::insert(conn, &org)?, true),
            };
            let new = users::NewUser {
                org_id: organization.id,
                email: &email,
                name: &name,
                role: Role::Admin,
                password_hash: &password_hash,
            };
            users::insert(conn, new).map_err(|error| match error {
                StoreError::Conflict(_) => {
                    StoreError::Config(format!("{org} already has a user with e-mail {email}"))
                }
                other => other,
            })?;
            Ok(Created {
                org_name: organization.name,
                org_created,
                email: email.clone(),
            })
        })
        .map_err(|error| match error {
            StoreError::Config(message) => BootstrapError::Invalid(message),
            other => BootstrapError::Store(other),
        })
}

/// On an empty database, creates the bootstrap organization and admin. Returns the
/// generated password when none was configured (to be shown once).
pub fn first_start(store: &Store, config: &Config) -> Result<Option<String>, BootstrapError> {
    if store.read(users::count_all)? > 0 {
        return Ok(None);
    }
    let generated = config
        .bootstrap_password
        .is_none()
        .then(|| random_token(15));
    let password = config
        .bootstrap_password
        .clone()
        .or_else(|| generated.clone())
        .unwrap_or_default();
    match create_admin(
        store,
        &config.bootstrap_org,
        &config.bootstrap_email,
        &password,
        "Administrator",
    ) {
        Ok(_) => Ok(generated),
        // Another instance starting at the same moment won the race: nothing to do.
        Err(BootstrapError::Invalid(_)) if store.read(users::count_all)? > 0 => Ok(None),
        Err(error) => Err(error),
    }
}
