//! Contacts (API.md, Contacts): the team's customer directory, its search, favorites,
//! manual opt-outs, history, merges and CSV import/export.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::common::nullable;
use crate::conversations::Contact;
use crate::page_type;

page_type!(ContactPage, Contact);

/// The directory's filters: `q` finds contacts by a word prefix of their name, e-mail or
/// company, or by any run of digits of a phone number typed in any format.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContactQuery {
    /// e.g. `ana`, `acme`, `(415) 555-2671`, `2671`.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// Only the caller's favorites.
    pub favorite: Option<bool>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Opaque: the `next_cursor` of the previous page, as it was returned.
    #[serde(default, deserialize_with = "crate::common::empty_as_none")]
    #[param(pattern = r"^[A-Za-z0-9_-]*$", max_length = 2048)]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContact {
    pub name: Option<String>,
    /// Any format; stored as E.164 (a 10-digit number is North American). A number another
    /// contact has is refused with 409 `duplicate`.
    #[serde(default)]
    pub phone_numbers: Vec<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    pub notes: Option<String>,
}

/// Fields left out stay as they are; `null` clears; `phone_numbers` replaces the list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContact {
    #[serde(default, deserialize_with = "nullable")]
    pub name: Option<Option<String>>,
    pub phone_numbers: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub company: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub notes: Option<Option<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetOptOut {
    /// `true`: no more outbound sms/mms to this contact (as if they had texted STOP).
    pub sms: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeContacts {
    /// The contact folded into this one and then deleted.
    pub other_id: i64,
}

/// One row of an import that was not taken.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportFailure {
    /// The row's line in the file as a spreadsheet numbers it (the header is row 1).
    pub row: i64,
    /// `validation_failed` (a bad field) or `duplicate` (its numbers or e-mail belong to
    /// more than one existing contact, or a number of the row belongs to another contact).
    pub code: String,
    pub detail: String,
}

/// What an import did: rows that made a new contact, rows that updated the contact their
/// phone number (or else e-mail) matched, and rows refused.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportResult {
    pub created: i64,
    pub updated: i64,
    pub failed: Vec<ImportFailure>,
}
