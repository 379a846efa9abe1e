//! The OpenAPI document as the server reads it back: which methods each path has (for 405
//! and its `Allow` header), and, when `check_contract` is on (the test suite), a check of
//! every response against its operation's entry, so a status or code the document does not
//! list is caught by whichever test provokes it.

use std::sync::{LazyLock, Mutex};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, web};
use serde_json::Value;

use openapi::ErrorCode;

use crate::error::ApiError;
use crate::state::AppState;

/// One documented path: its template split into segments (`None` for a `{parameter}`).
struct Route {
    template: String,
    segments: Vec<Option<String>>,
    methods: Vec<&'static str>,
}

impl Route {
    fn matches(&self, segments: &[&str]) -> bool {
        self.segments.len() == segments.len()
            && self
                .segments
                .iter()
                .zip(segments)
                .all(|(expected, got)| expected.as_deref().is_none_or(|e| e == *got))
    }

    fn parameters(&self) -> usize {
        self.segments.iter().filter(|s| s.is_none()).count()
    }
}

pub struct Contract {
    document: Value,
    routes: Vec<Route>,
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

static CONTRACT: LazyLock<Contract> =
    LazyLock::new(|| Contract::new(crate::openapi_json().clone()));

impl Contract {
    fn new(document: Value) -> Contract {
        let routes = document
            .get("paths")
            .and_then(Value::as_object)
            .map(|paths| {
                paths
                    .iter()
                    .map(|(template, item)| Route {
                        template: template.clone(),
                        segments: template
                            .trim_start_matches('/')
                            .split('/')
                            .map(|segment| (!segment.starts_with('{')).then(|| segment.to_string()))
                            .collect(),
                        methods: METHODS
                            .into_iter()
                            .filter(|method| item.get(method.to_ascii_lowercase()).is_some())
                            .collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Contract { document, routes }
    }

    /// The methods of the documented path that `path` matches most specifically (the one
    /// with the fewest parameters: `/v1/contacts/import` over `/v1/contacts/{id}`), or
    /// `None` when no path matches.
    fn methods_of(&self, path: &str) -> Option<Vec<&'static str>> {
        let matching = self.most_specific(path);
        if matching.is_empty() {
            return None;
        }
        let mut methods: Vec<&'static str> = matching
            .iter()
            .flat_map(|route| route.methods.iter().copied())
            .collect();
        methods.sort_unstable();
        methods.dedup();
        Some(methods)
    }

    /// The documented paths `path` matches, the most specific (fewest parameters) first.
    fn matching(&self, path: &str) -> Vec<&Route> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut matching: Vec<&Route> = self
            .routes
            .iter()
            .filter(|route| route.matches(&segments))
            .collect();
        matching.sort_by_key(|route| route.parameters());
        matching
    }

    /// The documented paths `path` matches with the fewest parameters (one template; several
    /// entries only if the document repeats it).
    fn most_specific(&self, path: &str) -> Vec<&Route> {
        let mut matching = self.matching(path);
        let fewest = matching.first().map(|route| route.parameters());
        matching.retain(|route| Some(route.parameters()) == fewest);
        matching
    }

    /// Whether the document lists this response: `Err` says what it lacks.
    fn check(
        &self,
        method: &str,
        template: &str,
        status: u16,
        code: Option<&str>,
    ) -> Result<(), String> {
        if code == Some(ErrorCode::MethodNotAllowed.as_str()) {
            return Ok(()); // The path's answer (it has other methods), not this operation's.
        }
        let Some(listed) = openapi::problems::listed(&self.document, method, template) else {
            return Ok(()); // Not an operation of the document (`/docs`, `/openapi.json`).
        };
        let Some((_, codes)) = listed.iter().find(|(listed, _)| *listed == status) else {
            return Err(format!(
                "{method} {template} answered {status}{}, which its OpenAPI entry does not list",
                code.map(|code| format!(" `{code}`")).unwrap_or_default()
            ));
        };
        if codes.is_empty() {
            return Ok(()); // A success, or an error with a body of its own (`/readyz`).
        }
        match code {
            Some(code) if !codes.iter().any(|listed| listed == code) => Err(format!(
                "{method} {template} answered {status} `{code}`; its entry lists {codes:?}"
            )),
            None => Err(format!(
                "{method} {template} answered {status} without a problem code"
            )),
            Some(_) => Ok(()),
        }
    }
}

/// What `check_contract` found so far: every response an entry does not list.
#[derive(Default)]
pub struct Violations(Mutex<Vec<String>>);

impl Violations {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    fn record(&self, violation: String) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(violation);
    }
}

/// Checks each response against the document when the configuration asks for it.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let checked = state
        .filter(|state| state.config.check_contract)
        .map(|state| (state, request.method().to_string(), request.match_pattern()));
    let response = next.call(request).await?;
    if let Some((state, method, Some(template))) = checked {
        let code = response
            .response()
            .error()
            .and_then(|error| error.as_error::<ApiError>())
            .map(|error| error.code().as_str());
        let status = response.status().as_u16();
        if let Err(violation) = CONTRACT.check(&method, &template, status, code) {
            tracing::error!(%violation, "response outside the contract");
            state.contract_violations.record(violation);
        }
    }
    Ok(response)
}

/// 405 for a method the path (as most specifically documented) does not have.
pub fn method_refusal(request: &HttpRequest) -> Option<ApiError> {
    CONTRACT
        .methods_of(request.path())
        .filter(|methods| !methods.contains(&request.method().as_str()))
        .map(ApiError::MethodNotAllowed)
}

/// The documented template a request is served by, as the router picks it: of the paths
/// that match, the most specific one with the request's method (else the most specific).
/// Segment comparisons only: the router's own lookup runs a regular expression per route.
pub fn route_template(method: &str, path: &str) -> Option<&'static str> {
    let contract: &'static Contract = &CONTRACT;
    let matching = contract.matching(path);
    matching
        .iter()
        .find(|route| route.methods.contains(&method))
        .or(matching.first())
        .map(|route| route.template.as_str())
}

/// Paths the router does not serve: 405 with `Allow` when the path has other methods, else
/// 404, both as problem documents.
pub async fn unrouted(request: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(method_refusal(&request).unwrap_or_else(ApiError::not_found))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn contract() -> Contract {
        let mut document = json!({
            "paths": {
                "/v1/things/{id}": {"get": {"responses": {"200": {}, "404": {}}}, "delete": {"responses": {"204": {}}}},
                "/v1/things/counts": {"get": {"responses": {"200": {}}}},
            },
            "components": {"schemas": {"Problem": {"properties": {"code": {}}}}},
        });
        openapi::problems::document(&mut document);
        Contract::new(document)
    }

    #[test]
    fn a_status_or_code_the_entry_does_not_list_is_caught() {
        let contract = contract();
        assert!(contract.check("GET", "/v1/things/{id}", 200, None).is_ok());
        assert!(
            contract
                .check("GET", "/v1/things/{id}", 404, Some("not_found"))
                .is_ok()
        );
        // Every operation may answer 500 and 503 with their codes.
        assert!(
            contract
                .check(
                    "DELETE",
                    "/v1/things/{id}",
                    503,
                    Some("service_unavailable")
                )
                .is_ok()
        );
        let unlisted = contract.check("GET", "/v1/things/{id}", 409, Some("duplicate"));
        assert!(unlisted.is_err_and(|why| why.contains("409")));
        let wrong_code = contract.check("GET", "/v1/things/{id}", 404, Some("forbidden"));
        assert!(wrong_code.is_err_and(|why| why.contains("forbidden")));
        let no_code = contract.check("GET", "/v1/things/{id}", 404, None);
        assert!(no_code.is_err());
    }

    #[test]
    fn methods_are_those_of_the_matching_paths() {
        let contract = contract();
        assert_eq!(
            contract.methods_of("/v1/things/7"),
            Some(vec!["DELETE", "GET"])
        );
        // The literal path decides: DELETE /v1/things/counts is not a thing's deletion.
        assert_eq!(contract.methods_of("/v1/things/counts"), Some(vec!["GET"]));
        assert_eq!(contract.methods_of("/v1/nothing"), None);
    }

    #[test]
    fn every_documented_operation_is_found_under_its_own_template() {
        let document = crate::openapi_json();
        let paths = document["paths"].as_object().expect("paths");
        assert!(paths.len() > 50, "the real document");
        for (template, item) in paths {
            // Concrete values that are no literal segment of any path.
            let concrete: String = template
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        "7"
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            for method in METHODS {
                if item.get(method.to_ascii_lowercase()).is_some() {
                    assert_eq!(
                        route_template(method, &concrete),
                        Some(template.as_str()),
                        "{method} {concrete}"
                    );
                }
            }
        }
        assert_eq!(route_template("GET", "/v1/nothing/here"), None);
    }
}
