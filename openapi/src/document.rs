//! The last touches on the generated OpenAPI document, so that it validates, lints clean and
//! says what the server does: problem responses (`problems::document`), a summary on every
//! operation, security stated on every operation (public ones say so), and a server.

use serde_json::{Value, json};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

pub fn finish(doc: &mut Value) {
    crate::problems::document(doc);
    crate::constraints::apply(doc);
    if let Some(object) = doc.as_object_mut() {
        object
            .entry("servers")
            .or_insert_with(|| json!([{"url": "/", "description": "This server"}]));
    }
    for_each_operation(doc, &["paths", "webhooks"], |operation_id, operation| {
        if operation.get("summary").is_none() {
            operation.insert("summary".into(), summary_of(operation_id).into());
        }
        // Public operations (sign-in, health, token- or signature-keyed links) say so
        // rather than leave security unstated.
        operation.entry("security").or_insert_with(|| json!([]));
        // Ids in paths are positive (none is 0 or negative; such a path answers 404).
        let parameters = operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut);
        for parameter in parameters.into_iter().flatten() {
            let is_id = parameter["in"] == "path"
                && parameter["name"]
                    .as_str()
                    .is_some_and(|name| name == "id" || name.ends_with("_id"));
            if let Some(schema) = parameter.get_mut("schema").and_then(Value::as_object_mut)
                && is_id
                && schema.get("type") == Some(&json!("integer"))
            {
                schema.insert("minimum".into(), json!(1));
            }
        }
    });
}

/// Calls `visit` with each operation (and its id) of the document's `sections`.
pub(crate) fn for_each_operation(
    doc: &mut Value,
    sections: &[&str],
    mut visit: impl FnMut(&str, &mut serde_json::Map<String, Value>),
) {
    for &section in sections {
        let Some(items) = doc.get_mut(section).and_then(Value::as_object_mut) else {
            continue;
        };
        for item in items.values_mut() {
            for method in METHODS {
                if let Some(operation) = item.get_mut(method).and_then(Value::as_object_mut) {
                    let id = operation
                        .get("operationId")
                        .and_then(Value::as_str)
                        .unwrap_or(method)
                        .to_string();
                    visit(&id, operation);
                }
            }
        }
    }
}

/// `list_contact_activity` → "List contact activity".
fn summary_of(operation_id: &str) -> String {
    let words = operation_id.replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_gets_a_summary_security_and_the_document_a_server() {
        let mut doc = json!({
            "paths": {"/v1/x": {
                "get": {"operationId": "list_things", "responses": {"200": {}}},
                "post": {"operationId": "make_thing", "summary": "Make one", "security": [{"bearer": []}], "responses": {"201": {}}},
            }},
            "components": {"schemas": {"Problem": {"properties": {"code": {}}}}},
        });
        finish(&mut doc);
        assert_eq!(doc["paths"]["/v1/x"]["get"]["summary"], "List things");
        assert_eq!(doc["paths"]["/v1/x"]["get"]["security"], json!([]));
        assert_eq!(doc["paths"]["/v1/x"]["post"]["summary"], "Make one");
        assert_eq!(doc["servers"][0]["url"], "/");
    }
}
