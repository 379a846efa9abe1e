//! Shapes every endpoint shares: the problem document, list pages, nullable patches.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

/// An RFC 9457 problem document. Clients switch on `code`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[schema(example = "https://switchboard.dev/problems/validation_failed")]
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    /// Stable and machine-readable, e.g. `conversation_closed`.
    #[schema(example = "validation_failed")]
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Each invalid field, with `validation_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldProblem>>,
    /// With `organization_required`: the organizations the e-mail and password sign in to;
    /// sign in again naming one as `org_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizations: Option<Vec<OrganizationChoice>>,
}

/// An organization a sign-in may choose.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrganizationChoice {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// A query string that is empty (`?cursor=`) means the parameter was not given.
pub fn empty_as_none<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let value: Option<String> = serde::Deserialize::deserialize(deserializer)?;
    Ok(value.filter(|text| !text.is_empty()))
}

/// `limit` (1–100, default 25) and the opaque `cursor` of the previous page's `next_cursor`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Opaque: the `next_cursor` of the previous page, as it was returned.
    #[serde(default, deserialize_with = "crate::common::empty_as_none")]
    #[param(pattern = r"^[A-Za-z0-9_-]*$", max_length = 2048)]
    pub cursor: Option<String>,
}

/// Declares the `{items, next_cursor}` page of a list.
#[macro_export]
macro_rules! page_type {
    ($page:ident, $item:ty) => {
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        pub struct $page {
            pub items: Vec<$item>,
            /// Pass back for the next page (as `cursor`; as `before` for messages); `null`
            /// on the last page.
            pub next_cursor: Option<String>,
        }
    };
}

/// For PATCH fields that may be set to `null`: absent → `None`, `null` → `Some(None)`.
pub fn nullable<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Timestamps on the wire: RFC 3339 UTC with exactly millisecond precision
/// (`2026-11-21T09:30:00.123Z`), whatever the sub-second part is.
pub mod millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn format(at: &DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(deserializer)
    }

    /// The same for optional timestamps.
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            at: &Option<DateTime<Utc>>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => serializer.serialize_str(&super::format(at)),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            Option::<DateTime<Utc>>::deserialize(deserializer)
        }
    }
}

/// Timestamps in query strings: RFC 3339, strictly (a bad one is the client's 400).
pub mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, de::Error};

    pub fn option<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(text) => DateTime::parse_from_rfc3339(text.trim())
                .map(|at| Some(at.with_timezone(&Utc)))
                .map_err(|_| D::Error::custom(format!("{text:?} is not an RFC 3339 time"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    #[test]
    fn timestamps_always_carry_milliseconds() {
        let whole = Utc.with_ymd_and_hms(2026, 11, 21, 9, 30, 0).unwrap();
        assert_eq!(super::millis::format(&whole), "2026-11-21T09:30:00.000Z");
        let fine = whole + chrono::Duration::microseconds(123_456);
        assert_eq!(super::millis::format(&fine), "2026-11-21T09:30:00.123Z");
    }
}
