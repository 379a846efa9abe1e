//! Prometheus metrics and the request log: one middleware times each request, counts it by
//! route pattern and status, and logs it with a request id (never its body or headers).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use rand::RngCore;
use tracing::Instrument;

use crate::state::AppState;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    queries: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "switchboard_http_requests_total",
                "HTTP requests by route pattern and status",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "switchboard_http_request_duration_seconds",
                "HTTP request latency by route pattern",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )?;
        let pool_connections = IntGauge::new(
            "switchboard_db_pool_connections",
            "Open database connections",
        )?;
        let pool_idle = IntGauge::new(
            "switchboard_db_pool_idle_connections",
            "Idle database connections",
        )?;
        let pool_max = IntGauge::new("switchboard_db_pool_max_connections", "Pool size limit")?;
        let queries = IntGauge::new(
            "switchboard_db_queries_total",
            "SQL statements run by this process",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_idle.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        registry.register(Box::new(queries.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            pool_connections,
            pool_idle,
            pool_max,
            queries,
        })
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// The Prometheus text exposition, with pool gauges read now.
    pub fn render(&self, store: &persistence::Store) -> String {
        let (connections, idle) = store.pool_state();
        self.pool_connections.set(i64::from(connections));
        self.pool_idle.set(i64::from(idle));
        self.pool_max.set(i64::from(store.pool_max()));
        self.queries
            .set(i64::try_from(store.queries_executed()).unwrap_or(i64::MAX));
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "encoding metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A request id: the caller's `X-Request-Id` when it is short and printable, else a new one.
fn request_id(request: &ServiceRequest) -> String {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            !value.is_empty() && value.len() <= 64 && value.chars().all(|c| c.is_ascii_graphic())
        })
        .map(str::to_string)
        .unwrap_or_else(|| {
            let mut bytes = [0u8; 8];
            rand::rng().fill_bytes(&mut bytes);
            hex::encode(bytes)
        })
}

/// The path as the request log records it: a path whose route carries a secret in a segment
/// (a survey's `{token}`, the customer's only key to it) is recorded as its route pattern.
fn loggable_path(path: &str, route: &str) -> String {
    if route.contains("{token}") {
        route.to_string()
    } else {
        path.to_string()
    }
}

pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let id = request_id(&request);
    let method = request.method().to_string();
    // The documented template without the router's regular expressions (they were a
    // noticeable part of a request's CPU); the router's own lookup for the rest (`/docs`).
    let route = crate::contract::route_template(&method, request.path())
        .map(str::to_string)
        .or_else(|| request.match_pattern())
        .unwrap_or_else(|| "unmatched".to_string());
    let path = loggable_path(request.path(), &route);
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let span = tracing::info_span!("request", request_id = %id, %method, %route);
    let mut response = next.call(request).instrument(span.clone()).await?;
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    if let Some(state) = state {
        state.metrics.observe(&method, &route, status, seconds);
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    span.in_scope(|| tracing::info!(%path, status, elapsed_ms = seconds * 1000.0, "request"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn a_survey_token_never_reaches_the_request_log() {
        assert_eq!(
            loggable_path(
                "/v1/public/surveys/Zq8-secret",
                "/v1/public/surveys/{token}"
            ),
            "/v1/public/surveys/{token}"
        );
        assert_eq!(
            loggable_path("/v1/conversations/42", "/v1/conversations/{id}"),
            "/v1/conversations/42"
        );
    }
}
