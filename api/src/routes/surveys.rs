//! Satisfaction surveys: agents send them; customers answer through a public link.

use actix_web::{HttpResponse, get, post, web};
use domain::ConversationId;
use openapi::{Message, Problem, PublicSurvey, SurveyAnswer, SurveySummary, SurveySummaryQuery};

use crate::auth::Caller;
use crate::body::Json;
use crate::db;
use crate::error::ApiError;
use crate::service::events;
use crate::service::surveys;
use crate::state::AppState;

/// Sends the customer a satisfaction survey (a message of kind `survey`).
#[utoipa::path(
    tag = "conversations",
    operation_id = "send_survey",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 201, description = "The survey message, with its `survey_token`", body = Message),
        (status = 404, body = Problem),
        (status = 422, description = "`conversation_closed`, `contact_opted_out`", body = Problem),
    )
)]
#[post("/v1/conversations/{id}/survey")]
pub async fn send_survey(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (actor, id) = (caller.actor(), ConversationId(path.into_inner()));
    let base = state.config.public_base();
    let message = events::write(&state, move |conn, outbox| {
        surveys::send(conn, &actor, id, &base, outbox)
    })
    .await?;
    Ok(HttpResponse::Created().json(message))
}

/// The survey behind a customer's link.
#[utoipa::path(
    tag = "surveys",
    operation_id = "get_public_survey",
    params(("token" = String, Path)),
    responses((status = 200, body = PublicSurvey), (status = 404, body = Problem))
)]
#[get("/v1/public/surveys/{token}")]
pub async fn get_public_survey(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<PublicSurvey>, ApiError> {
    let token = path.into_inner();
    let survey = db::read(&state.store, move |conn| surveys::show(conn, &token)).await?;
    Ok(web::Json(survey))
}

/// The customer's answer: a rating from 1 to 5 and an optional comment, once.
#[utoipa::path(
    tag = "surveys",
    operation_id = "answer_public_survey",
    params(("token" = String, Path)),
    request_body = SurveyAnswer,
    responses(
        (status = 200, body = PublicSurvey),
        (status = 404, body = Problem),
        (status = 409, description = "`duplicate`: already answered", body = Problem),
        (status = 422, description = "`validation_failed`", body = Problem),
    )
)]
#[post("/v1/public/surveys/{token}")]
pub async fn answer_public_survey(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<SurveyAnswer>,
) -> Result<web::Json<PublicSurvey>, ApiError> {
    let token = path.into_inner();
    let answer = body.into_inner();
    let survey = events::write(&state, move |conn, outbox| {
        surveys::answer(conn, &token, &answer, outbox)
    })
    .await?;
    Ok(web::Json(survey))
}

/// Answers and mean ratings over `[from, to)`, per inbox and per agent (the assignee when the
/// customer answered). Admins read every inbox; managers the inboxes they belong to.
#[utoipa::path(
    tag = "surveys",
    operation_id = "get_survey_summary",
    security(("bearer" = [])),
    params(SurveySummaryQuery),
    responses(
        (status = 200, body = SurveySummary),
        (status = 400, description = "`bad_request`: a time that is not RFC 3339", body = Problem),
        (status = 403, description = "`forbidden`: agents", body = Problem),
        (status = 404, description = "`inbox_id` is not an inbox the caller may read", body = Problem),
        (status = 422, description = "`validation_failed`: `from` is later than `to`", body = Problem),
    )
)]
#[get("/v1/surveys/summary")]
pub async fn get_survey_summary(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<SurveySummaryQuery>,
) -> Result<web::Json<SurveySummary>, ApiError> {
    let (actor, query) = (caller.actor(), query.into_inner());
    let summary = db::read(&state.store, move |conn| {
        surveys::summary(conn, &actor, &query)
    })
    .await?;
    Ok(web::Json(summary))
}
