//! Every error `code` the server answers with, its HTTP status and its title, in one place.
//! Responses, the OpenAPI document (each operation's problem `code` enum) and the docs all
//! read this table.

use domain::DomainError;
use serde_json::{Map, Value, json};

macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = ($code:literal, $status:literal, $title:literal),)*) => {
        /// A stable, machine-readable problem `code`: clients switch on it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The HTTP status this code is always answered with.
            pub fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }

            /// The problem document's `title`.
            pub fn title(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $title,)*
                }
            }

            /// When the code is answered, for documentation.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => concat!($($doc),*).trim_ascii(),)*
                }
            }
        }
    };
}

error_codes! {
    /// The request is malformed: JSON that does not parse or is not an object, an unknown
    /// field, a query or path parameter of the wrong type, a cursor this server did not make.
    BadRequest = ("bad_request", 400, "Bad request"),
    /// No valid access token: missing, malformed, expired, or ended by a sign-out,
    /// deactivation or password change.
    Unauthenticated = ("unauthenticated", 401, "Not signed in"),
    /// Sign-in with a wrong e-mail or password.
    InvalidCredentials = ("invalid_credentials", 401, "Invalid credentials"),
    /// Sign-in or refresh by a deactivated user.
    AccountDisabled = ("account_disabled", 401, "Account disabled"),
    /// Signed in, but the caller's role or membership does not allow this.
    Forbidden = ("forbidden", 403, "Forbidden"),
    /// Unknown id, another organization's, or one the caller may not see.
    NotFound = ("not_found", 404, "Not found"),
    /// The path exists but not with this method; `Allow` lists the methods it has.
    MethodNotAllowed = ("method_not_allowed", 405, "Method not allowed"),
    /// Something with this name, number or key already exists (or two requests created it at
    /// once and this one lost).
    Duplicate = ("duplicate", 409, "Conflict"),
    /// Another user of this organization has this e-mail address.
    EmailTaken = ("email_taken", 409, "Conflict"),
    /// The e-mail and password sign in to several organizations: sign in again with one of
    /// the listed `organizations` as `org_id`.
    OrganizationRequired = ("organization_required", 409, "Choose an organization"),
    /// The conversation changed between what the caller saw and their change (a newer
    /// message, a colleague a moment earlier): reload it and decide again.
    ConversationChanged = ("conversation_changed", 409, "Conflict"),
    /// An event cursor older than the log keeps: reload lists, then resume from the newest.
    CursorExpired = ("cursor_expired", 410, "Cursor expired"),
    /// The body or upload is larger than this server takes.
    PayloadTooLarge = ("payload_too_large", 413, "Payload too large"),
    /// The body is not of a type this operation takes.
    UnsupportedMediaType = ("unsupported_media_type", 415, "Unsupported media type"),
    /// An attachment whose type is not allowed, or whose bytes are not what it claims.
    UnsupportedAttachment = ("unsupported_attachment", 415, "Unsupported attachment"),
    /// One or more fields are invalid; `errors` names each one.
    ValidationFailed = ("validation_failed", 422, "Validation failed"),
    /// Assignment is turned off for this inbox.
    AssignmentDisabled = ("assignment_disabled", 422, "Refused by a rule"),
    /// The assignee is not a member of the conversation's inbox.
    AssigneeNotMember = ("assignee_not_member", 422, "Refused by a rule"),
    /// The assignee is not a member of the team named with them.
    AssigneeNotInTeam = ("assignee_not_in_team", 422, "Refused by a rule"),
    /// The conversation is closed: reopen it first (or it was closed a moment ago).
    ConversationClosed = ("conversation_closed", 422, "Refused by a rule"),
    /// Moving conversations is turned off for this inbox.
    MoveDisabled = ("move_disabled", 422, "Refused by a rule"),
    /// The contact has opted out of text messages (STOP or a manual opt-out).
    ContactOptedOut = ("contact_opted_out", 422, "Refused by a rule"),
    /// This channel cannot start a conversation; only the customer can.
    ChannelCannotInitiate = ("channel_cannot_initiate", 422, "Refused by a rule"),
    /// WhatsApp takes free-form replies only within 24 hours of the customer's last message
    /// (its time as the provider reports it); the customer must write again first.
    ChannelWindowClosed = ("channel_window_closed", 422, "Refused by a rule"),
    /// This kind of attachment cannot be sent on this channel.
    AttachmentNotAllowedOnChannel = ("attachment_not_allowed_on_channel", 422, "Refused by a rule"),
    /// A web chat request from a page whose origin is not one of the channel's
    /// `allowed_origins`.
    OriginNotAllowed = ("origin_not_allowed", 403, "Origin not allowed"),
    /// Too many attempts; `Retry-After` says when to try again.
    RateLimited = ("rate_limited", 429, "Too many requests"),
    /// A bug on the server's side; the cause is logged, never shown.
    InternalError = ("internal_error", 500, "Internal error"),
    /// A service this request needs (the database, Redis) is unreachable; try again shortly.
    ServiceUnavailable = ("service_unavailable", 503, "Service unavailable"),
}

impl ErrorCode {
    /// The code of a rule's refusal.
    pub fn of(error: &DomainError) -> ErrorCode {
        match error {
            DomainError::Forbidden => ErrorCode::Forbidden,
            DomainError::NotFound => ErrorCode::NotFound,
            DomainError::Validation(_) => ErrorCode::ValidationFailed,
            DomainError::AssignmentDisabled => ErrorCode::AssignmentDisabled,
            DomainError::AssigneeNotMember => ErrorCode::AssigneeNotMember,
            DomainError::AssigneeNotInTeam => ErrorCode::AssigneeNotInTeam,
            DomainError::ConversationClosed => ErrorCode::ConversationClosed,
            DomainError::ConversationChanged => ErrorCode::ConversationChanged,
            DomainError::MoveDisabled => ErrorCode::MoveDisabled,
            DomainError::ContactOptedOut => ErrorCode::ContactOptedOut,
            DomainError::ChannelCannotInitiate => ErrorCode::ChannelCannotInitiate,
            DomainError::ChannelWindowClosed => ErrorCode::ChannelWindowClosed,
            DomainError::AttachmentNotAllowedOnChannel => ErrorCode::AttachmentNotAllowedOnChannel,
            DomainError::UnsupportedAttachment => ErrorCode::UnsupportedAttachment,
        }
    }

    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|known| known.as_str() == code)
    }

    /// The codes answered with `status`.
    pub fn with_status(status: u16) -> impl Iterator<Item = ErrorCode> {
        ErrorCode::ALL
            .iter()
            .copied()
            .filter(move |code| code.status() == status)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The code a problem response of `status` answers when its entry names none.
fn default_code(status: u16) -> Option<ErrorCode> {
    Some(match status {
        400 => ErrorCode::BadRequest,
        401 => ErrorCode::Unauthenticated,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        409 => ErrorCode::Duplicate,
        410 => ErrorCode::CursorExpired,
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        422 => ErrorCode::ValidationFailed,
        429 => ErrorCode::RateLimited,
        500 => ErrorCode::InternalError,
        503 => ErrorCode::ServiceUnavailable,
        _ => return None,
    })
}

/// The codes a response entry names: each `` `code` `` in its description that is a code of
/// its status, or else the status's usual code.
fn named_codes(status: u16, description: &str) -> Vec<ErrorCode> {
    let mut codes: Vec<ErrorCode> = description
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(ErrorCode::parse)
        .filter(|code| code.status() == status)
        .collect();
    if codes.is_empty() {
        codes.extend(default_code(status));
        if status == 401 {
            // A valid token of a user deactivated since is refused with its own code.
            codes.push(ErrorCode::AccountDisabled);
        }
    }
    codes.sort();
    codes.dedup();
    codes
}

/// The responses every operation of its kind can give, whatever its entry says.
fn implied(operation: &Map<String, Value>) -> Vec<u16> {
    let mut statuses = vec![500, 503];
    let has_input = operation.get("requestBody").is_some()
        || operation
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|parameters| !parameters.is_empty());
    if has_input {
        statuses.push(400);
    }
    if operation.get("requestBody").is_some() {
        statuses.extend([413, 415]);
    }
    let secured = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|security| security.iter().any(|scheme| scheme != &json!({})));
    if secured {
        statuses.push(401);
    }
    statuses
}

/// Rewrites a generated document so that it says what the server answers: each operation
/// lists every status it can give (those its entry names plus those every operation of its
/// kind can give), each problem response as `application/problem+json` whose `code` is an
/// enum of that operation's codes, and every response has a description.
pub fn document(doc: &mut Value) {
    let schemas = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut);
    if let Some(schemas) = schemas {
        schemas.insert("ErrorCode".into(), code_schema());
        if let Some(code) = schemas
            .get_mut("Problem")
            .and_then(|problem| problem.pointer_mut("/properties/code"))
        {
            *code = json!({"$ref": "#/components/schemas/ErrorCode"});
        }
    }
    // Webhooks are calls this server makes: their responses are the receiver's, not ours.
    crate::document::for_each_operation(doc, &["paths"], |_, operation| {
        let implied = implied(operation);
        let Some(responses) = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        for status in implied {
            responses
                .entry(status.to_string())
                .or_insert_with(|| json!({}));
        }
        for (status, response) in responses.iter_mut() {
            if let (Ok(status), Some(response)) = (status.parse::<u16>(), response.as_object_mut())
            {
                document_response(status, response);
            }
        }
    });
}

/// One response of an operation: a success gets a description if it has none; a problem
/// response becomes `application/problem+json` with its codes' enum.
fn document_response(status: u16, response: &mut Map<String, Value>) {
    let description = response
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if status < 400 {
        if description.is_empty() {
            response.insert("description".into(), success(status).into());
        }
        return;
    }
    if has_own_body(response) {
        return;
    }
    let codes = named_codes(status, &description);
    let listed: Vec<String> = codes.iter().map(|code| format!("`{code}`")).collect();
    let described = if description.is_empty() {
        let meanings: Vec<&str> = codes.iter().map(|code| code.meaning()).collect();
        format!("{}: {}", listed.join(", "), meanings.join(" "))
    } else if codes
        .iter()
        .all(|code| description.contains(&format!("`{code}`")))
    {
        description
    } else {
        format!("{}: {description}", listed.join(", "))
    };
    response.insert("description".into(), described.into());
    response.insert(
        "content".into(),
        json!({PROBLEM_TYPE: {"schema": {"allOf": [
            {"$ref": "#/components/schemas/Problem"},
            {"type": "object", "properties": {"code": {
                "type": "string",
                "enum": codes.iter().map(|code| code.as_str()).collect::<Vec<_>>(),
            }}},
        ]}}}),
    );
    if status == 429 {
        response.insert(
            "headers".into(),
            json!({"Retry-After": {
                "description": "Seconds to wait before trying again",
                "schema": {"type": "integer", "minimum": 1},
            }}),
        );
    }
}

/// An error response with a body of its own (not a problem document), e.g. `/readyz`'s 503.
fn has_own_body(response: &Map<String, Value>) -> bool {
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return false;
    };
    !content.values().any(|media| {
        media.pointer("/schema/$ref").and_then(Value::as_str)
            == Some("#/components/schemas/Problem")
    })
}

pub const PROBLEM_TYPE: &str = "application/problem+json";

fn success(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "Done; no content",
        101 => "Switching protocols",
        _ => "Success",
    }
}

/// `ErrorCode` as a schema: every code, each with its status and meaning in the description.
fn code_schema() -> Value {
    let table: Vec<String> = ErrorCode::ALL
        .iter()
        .map(|code| format!("- `{code}` ({}): {}", code.status(), code.meaning()))
        .collect();
    json!({
        "type": "string",
        "description": format!("A stable, machine-readable problem code; clients switch on it.\n\n{}", table.join("\n")),
        "enum": ErrorCode::ALL.iter().map(|code| code.as_str()).collect::<Vec<_>>(),
    })
}

/// What the document lists for one operation: status → the codes a problem of that status
/// may carry (empty for a success).
pub fn listed(doc: &Value, method: &str, path: &str) -> Option<Vec<(u16, Vec<String>)>> {
    let responses = doc
        .get("paths")?
        .get(path)?
        .get(method.to_ascii_lowercase())?
        .get("responses")?
        .as_object()?;
    Some(
        responses
            .iter()
            .filter_map(|(status, response)| {
                let status = status.parse::<u16>().ok()?;
                let codes = response
                    .pointer(&format!(
                        "/content/{}/schema/allOf/1/properties/code/enum",
                        PROBLEM_TYPE.replace('/', "~1")
                    ))
                    .and_then(Value::as_array)
                    .map(|codes| {
                        codes
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                Some((status, codes))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_documented() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert!(
                code.as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
            assert!(!code.meaning().is_empty(), "{code} has no meaning");
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            assert!((400..600).contains(&code.status()), "{code}");
        }
    }

    #[test]
    fn every_rule_refusal_has_a_client_error_code() {
        let refusals = [
            DomainError::Forbidden,
            DomainError::NotFound,
            DomainError::Validation(Vec::new()),
            DomainError::AssignmentDisabled,
            DomainError::AssigneeNotMember,
            DomainError::AssigneeNotInTeam,
            DomainError::ConversationClosed,
            DomainError::ConversationChanged,
            DomainError::MoveDisabled,
            DomainError::ContactOptedOut,
            DomainError::ChannelCannotInitiate,
            DomainError::ChannelWindowClosed,
            DomainError::AttachmentNotAllowedOnChannel,
            DomainError::UnsupportedAttachment,
        ];
        for refusal in &refusals {
            let code = ErrorCode::of(refusal);
            assert!((400..500).contains(&code.status()), "{refusal:?}");
        }
    }
}
