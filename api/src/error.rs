//! One error type for every handler, rendered as an RFC 9457 problem document with the
//! stable `code` of API.md. Causes are logged, never shown.

use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use domain::{DomainError, FieldError};
use openapi::{ErrorCode, FieldProblem, Problem};
use persistence::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("wrong e-mail or password")]
    InvalidCredentials,
    #[error("this account is deactivated")]
    AccountDisabled,
    /// The e-mail and password match accounts in several organizations: (id, name) of each.
    #[error("this e-mail and password sign in to several organizations; choose one as org_id")]
    OrganizationRequired(Vec<(i64, String)>),
    #[error("the request was refused")]
    Domain(#[from] DomainError),
    /// A state conflict (409) with its code: `email_taken`, `duplicate`, ….
    #[error("{detail}")]
    Conflict { code: ErrorCode, detail: String },
    /// The path has other methods only (listed in `Allow`).
    #[error("this path does not take this method; it takes {}", .0.join(", "))]
    MethodNotAllowed(Vec<&'static str>),
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many attempts; try again in {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    #[error("the cursor is older than the event log keeps; reload your lists")]
    CursorExpired,
    #[error("this page's origin is not one of the web chat's allowed origins")]
    OriginNotAllowed,
    #[error("a service this request needs is unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn not_found() -> ApiError {
        ApiError::Domain(DomainError::NotFound)
    }

    pub fn invalid(field: &str, message: &str) -> ApiError {
        ApiError::Domain(DomainError::invalid(field, message))
    }

    /// The code this error is answered with (its status and title come with it).
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadRequest(_) => ErrorCode::BadRequest,
            ApiError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            ApiError::InvalidCredentials => ErrorCode::InvalidCredentials,
            ApiError::AccountDisabled => ErrorCode::AccountDisabled,
            ApiError::OrganizationRequired(_) => ErrorCode::OrganizationRequired,
            ApiError::Domain(error) => ErrorCode::of(error),
            ApiError::Conflict { code, .. } => *code,
            ApiError::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            ApiError::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::CursorExpired => ErrorCode::CursorExpired,
            ApiError::OriginNotAllowed => ErrorCode::OriginNotAllowed,
            ApiError::Unavailable(_) => ErrorCode::ServiceUnavailable,
            ApiError::Internal(_) => ErrorCode::InternalError,
        }
    }

    pub fn problem(&self) -> Problem {
        let code = self.code();
        let errors = match self {
            ApiError::Domain(DomainError::Validation(fields)) => {
                Some(fields.iter().map(field_problem).collect())
            }
            _ => None,
        };
        let detail = match self {
            // What went wrong inside stays in the logs.
            ApiError::Internal(_) => {
                "something went wrong on our side; it has been logged".to_string()
            }
            ApiError::Unavailable(_) => {
                "a service this request needs is unavailable; try again shortly".to_string()
            }
            ApiError::Domain(error) => error.to_string(),
            other => other.to_string(),
        };
        Problem {
            problem_type: format!("https://switchboard.dev/problems/{code}"),
            title: code.title().to_string(),
            status: code.status(),
            code: code.to_string(),
            detail: Some(detail),
            errors,
            organizations: match self {
                ApiError::OrganizationRequired(choices) => Some(
                    choices
                        .iter()
                        .map(|(id, name)| openapi::OrganizationChoice {
                            id: *id,
                            name: name.clone(),
                        })
                        .collect(),
                ),
                _ => None,
            },
        }
    }
}

fn field_problem(error: &FieldError) -> FieldProblem {
    FieldProblem {
        field: error.field.clone(),
        message: error.message.clone(),
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) => tracing::error!(%cause, "internal error"),
            ApiError::Unavailable(cause) => tracing::warn!(%cause, "dependency unavailable"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        if let ApiError::RateLimited { retry_after } = self {
            response.insert_header((RETRY_AFTER, retry_after.to_string()));
        }
        if let ApiError::MethodNotAllowed(allowed) = self {
            response.insert_header((ALLOW, allowed.join(", ")));
        }
        response.body(serde_json::to_string(&self.problem()).unwrap_or_default())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Domain(error) => ApiError::Domain(error),
            StoreError::Conflict(what) => {
                tracing::debug!(constraint = %what, "unique constraint refused a write");
                ApiError::Conflict {
                    code: ErrorCode::Duplicate,
                    detail: "this already exists".into(),
                }
            }
            StoreError::Unavailable(cause) => ApiError::Unavailable(cause),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Maps a unique-constraint refusal to `code` with a detail the client can show; any other
/// failure maps as usual.
pub fn on_conflict(code: ErrorCode, detail: &'static str) -> impl FnOnce(StoreError) -> ApiError {
    move |error| match error {
        StoreError::Conflict(_) => ApiError::Conflict {
            code,
            detail: detail.to_string(),
        },
        other => other.into(),
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        ApiError::Domain(error.into())
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

/// Errors the framework raises itself (a raw body over the limit, a body that breaks off)
/// become problem documents like every other error.
pub async fn framework_problems(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let response = next.call(request).await?;
    let Some(cause) = response
        .response()
        .error()
        .filter(|error| error.as_error::<ApiError>().is_none())
        .map(ToString::to_string)
    else {
        return Ok(response.map_into_boxed_body());
    };
    let error = match response.status().as_u16() {
        413 => ApiError::PayloadTooLarge,
        415 => ApiError::UnsupportedMediaType(cause),
        status if status < 500 => ApiError::BadRequest(cause),
        _ => ApiError::Internal(cause),
    };
    let (request, _) = response.into_parts();
    Ok(actix_web::dev::ServiceResponse::from_err(error, request).map_into_boxed_body())
}

/// Turns extractor failures (bad JSON, query or path) into problem documents.
pub mod extractors {
    use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
    use actix_web::{Error, HttpRequest};

    use super::ApiError;

    pub fn json(error: JsonPayloadError, _request: &HttpRequest) -> Error {
        let api_error = match error {
            JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
                ApiError::PayloadTooLarge
            }
            JsonPayloadError::ContentType => {
                ApiError::UnsupportedMediaType("send the body as application/json".to_string())
            }
            JsonPayloadError::Deserialize(error) => {
                ApiError::BadRequest(format!("invalid JSON body: {error}"))
            }
            other => ApiError::BadRequest(format!("invalid JSON body: {other}")),
        };
        api_error.into()
    }

    pub fn query(error: QueryPayloadError, _request: &HttpRequest) -> Error {
        ApiError::BadRequest(format!("invalid query parameters: {error}")).into()
    }

    /// A path that only matched a parameterized route because no literal one has this
    /// method (`PATCH /v1/contacts/import` reaching `/v1/contacts/{id}`) is a 405, not a
    /// bad id.
    pub fn path(error: PathError, request: &HttpRequest) -> Error {
        crate::contract::method_refusal(request)
            .unwrap_or_else(|| ApiError::BadRequest(format!("invalid path parameter: {error}")))
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_contract() {
        assert_eq!(ApiError::not_found().problem().status, 404);
        assert_eq!(
            ApiError::Domain(DomainError::AssignmentDisabled)
                .problem()
                .code,
            "assignment_disabled"
        );
        assert_eq!(
            ApiError::Domain(DomainError::AssignmentDisabled)
                .problem()
                .status,
            422
        );
        let problem = ApiError::invalid("email", "must be an e-mail address").problem();
        assert_eq!(problem.code, "validation_failed");
        assert_eq!(problem.errors.unwrap()[0].field, "email");
    }

    #[test]
    fn internal_causes_stay_out_of_the_response() {
        let problem = ApiError::Internal("password=hunter2 in SQL".into()).problem();
        assert!(!problem.detail.unwrap().contains("hunter2"));
    }
}
