//! What the validators enforce, stated in the request schemas: lengths, patterns, ranges.
//! The numbers are the validators' own constants (utoipa's attributes take literals only, so
//! they are written in here rather than on the fields); a test fails on an entry that names
//! a schema or field the document lacks.

use domain::validate::{PASSWORD_MAX, PASSWORD_MIN, limits};
use domain::{chats, contacts, surveys};
use serde_json::{Value, json};

/// A required text: the server trims it and refuses what is left empty.
fn text(max: usize) -> Value {
    json!({"minLength": 1, "maxLength": max, "pattern": "\\S"})
}

fn optional_text(max: usize) -> Value {
    json!({"maxLength": max})
}

/// The server trims and lower-cases addresses, and a contact's may be blank (cleared), so
/// only the length is stated; the rule (one `@`, a dotted domain) is in the description.
fn email() -> Value {
    json!({"maxLength": limits::EMAIL, "description": "An e-mail address: one `@`, a dotted domain, no spaces (trimmed and lower-cased)."})
}

fn color() -> Value {
    json!({"pattern": limits::COLOR_PATTERN})
}

fn ids(min: usize, max: usize) -> Value {
    json!({"minItems": min, "maxItems": max, "items": {"minimum": 1}})
}

fn id() -> Value {
    json!({"minimum": 1})
}

/// `(schema, field, what it must be)`.
fn table() -> Vec<(&'static str, &'static str, Value)> {
    let password = json!({"minLength": PASSWORD_MIN, "maxLength": PASSWORD_MAX});
    let tag_name =
        json!({"minLength": 1, "maxLength": limits::TAG_NAME, "pattern": "^[^/]*\\S[^/]*$"});
    let shortcut =
        json!({"minLength": 1, "maxLength": limits::SHORTCUT, "pattern": "^\\s*[^\\s/]+\\s*$"});
    let auto_assign_limit = json!({"minimum": 1, "maximum": 1000});
    vec![
        ("CreateUser", "email", email()),
        ("CreateUser", "name", text(limits::NAME)),
        ("CreateUser", "password", password.clone()),
        ("UpdateUser", "name", text(limits::NAME)),
        ("UpdateUser", "password", password),
        ("LoginRequest", "email", json!({"maxLength": limits::EMAIL})),
        ("CreateTag", "name", tag_name.clone()),
        ("CreateTag", "color", color()),
        ("UpdateTag", "name", tag_name),
        ("UpdateTag", "color", color()),
        ("CreateTeam", "name", text(limits::NAME)),
        ("CreateTeam", "member_ids", json!({"items": {"minimum": 1}})),
        ("UpdateTeam", "name", text(limits::NAME)),
        ("CreateInbox", "name", text(limits::NAME)),
        (
            "CreateInbox",
            "auto_assign_limit",
            auto_assign_limit.clone(),
        ),
        ("CreateInbox", "owner_id", id()),
        ("UpdateInbox", "name", text(limits::NAME)),
        ("UpdateInbox", "auto_assign_limit", auto_assign_limit),
        ("CreateCannedResponse", "shortcut", shortcut.clone()),
        ("CreateCannedResponse", "title", text(limits::NAME)),
        ("CreateCannedResponse", "body", text(limits::BODY)),
        ("UpdateCannedResponse", "shortcut", shortcut),
        ("UpdateCannedResponse", "title", text(limits::NAME)),
        ("UpdateCannedResponse", "body", text(limits::BODY)),
        ("SendMessage", "body", optional_text(limits::MESSAGE_BODY)),
        ("SendMessage", "attachment_ids", ids(0, limits::ATTACHMENTS)),
        ("SendMessage", "canned_response_id", id()),
        ("SendMessage", "if_last_message_id", id()),
        (
            "CreateConversation",
            "body",
            optional_text(limits::MESSAGE_BODY),
        ),
        (
            "CreateConversation",
            "attachment_ids",
            ids(0, limits::ATTACHMENTS),
        ),
        ("CreateConversation", "channel_id", id()),
        ("CreateConversation", "contact_id", id()),
        ("CreateContact", "name", optional_text(contacts::MAX_NAME)),
        (
            "CreateContact",
            "company",
            optional_text(contacts::MAX_COMPANY),
        ),
        ("CreateContact", "notes", optional_text(contacts::MAX_NOTES)),
        ("CreateContact", "email", email()),
        (
            "CreateContact",
            "phone_numbers",
            json!({"maxItems": contacts::MAX_NUMBERS}),
        ),
        ("UpdateContact", "name", optional_text(contacts::MAX_NAME)),
        (
            "UpdateContact",
            "company",
            optional_text(contacts::MAX_COMPANY),
        ),
        ("UpdateContact", "notes", optional_text(contacts::MAX_NOTES)),
        ("UpdateContact", "email", email()),
        (
            "UpdateContact",
            "phone_numbers",
            json!({"maxItems": contacts::MAX_NUMBERS}),
        ),
        ("MergeContacts", "other_id", id()),
        ("CreateChat", "name", text(chats::NAME_MAX)),
        (
            "CreateChat",
            "member_ids",
            json!({"minItems": 1, "maxItems": chats::MAX_MEMBERS - 1, "items": {"minimum": 1}}),
        ),
        (
            "SendChatMessage",
            "body",
            optional_text(limits::MESSAGE_BODY),
        ),
        (
            "SendChatMessage",
            "attachment_ids",
            ids(0, limits::ATTACHMENTS),
        ),
        ("BulkRequest", "ids", ids(1, limits::BULK)),
        ("BulkRequest", "assignee_id", id()),
        (
            "SurveyAnswer",
            "rating",
            json!({"minimum": surveys::LOWEST_RATING, "maximum": surveys::HIGHEST_RATING}),
        ),
        (
            "SurveyAnswer",
            "comment",
            optional_text(surveys::MAX_COMMENT_CHARS),
        ),
        ("AssignRequest", "assignee_id", id()),
        ("AssignRequest", "team_id", id()),
        ("MoveRequest", "inbox_id", id()),
    ]
}

/// Merges the table into the document's schemas; a nullable field (`type: [T, "null"]`)
/// keeps its null.
pub fn apply(doc: &mut Value) -> Vec<String> {
    let mut missing = Vec::new();
    for (schema, field, constraint) in table() {
        let Some(property) = doc
            .pointer_mut(&format!("/components/schemas/{schema}/properties/{field}"))
            .and_then(Value::as_object_mut)
        else {
            missing.push(format!("{schema}.{field}"));
            continue;
        };
        if let Some(extra) = constraint.as_object() {
            for (key, value) in extra {
                match (key.as_str(), property.get_mut("items")) {
                    ("items", Some(Value::Object(items))) => {
                        if let Some(value) = value.as_object() {
                            items.extend(value.clone());
                        }
                    }
                    _ => {
                        property.insert(key.clone(), value.clone());
                    }
                }
            }
        }
    }
    missing
}
