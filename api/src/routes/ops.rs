//! Operations: liveness, readiness, metrics.

use actix_web::{HttpRequest, HttpResponse, get, web};
use openapi::{Health, Readiness};
use subtle::ConstantTimeEq;

use crate::auth::bearer_token;
use crate::error::ApiError;
use crate::state::AppState;

/// The process is alive.
#[utoipa::path(tag = "operations", operation_id = "get_health", responses((status = 200, body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health {
        status: "ok".to_string(),
    })
}

/// The database (and Redis, when configured) answer; 503 otherwise.
#[utoipa::path(
    tag = "operations",
    operation_id = "get_readiness",
    responses((status = 200, body = Readiness), (status = 503, description = "A dependency is down", body = Readiness))
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = state.store.clone();
    let database_ok = matches!(web::block(move || store.ping()).await, Ok(Ok(())));
    let redis = match state.config.redis_url {
        None => "not_configured",
        Some(_) if state.bus.healthy() => "ok",
        Some(_) => "down",
    };
    let storage = state.storage.readiness().await;
    let ready = database_ok && redis != "down";
    let body = Readiness {
        status: if ready { "ok" } else { "unavailable" }.to_string(),
        database: if database_ok { "ok" } else { "down" }.to_string(),
        redis: redis.to_string(),
        storage: storage.to_string(),
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text: requests by route and status, latencies, database pool usage. When the
/// operator sets `SWITCHBOARD_METRICS_TOKEN`, only requests bearing it
/// (`Authorization: Bearer <token>`) are answered.
#[utoipa::path(
    tag = "operations",
    operation_id = "get_metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String),
        (status = 401, description = "`unauthenticated`: a metrics token is set and the request does not bear it", body = openapi::Problem),
    )
)]
#[get("/metrics")]
pub async fn metrics(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if let Some(expected) = state.config.metrics_token.as_deref() {
        let given = bearer_token(&request).unwrap_or_default();
        // Compared in constant time: the answer must not tell how much of a guess was right.
        if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            return Err(ApiError::Unauthenticated(
                "send Authorization: Bearer <the metrics token>",
            ));
        }
    }
    let text = state.metrics.render(&state.store);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}
