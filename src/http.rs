//! HTTP wiring: routes, per-request GraphQL data, tracing and request ids.

use std::future::Future;
use std::time::Duration;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::GraphQLRequest;
use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::{Span, field::Empty};

use crate::graphql::ApiSchema;
use crate::graphql::loaders::Loaders;

/// The media type of the GraphQL-over-HTTP specification.
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The schema, built once.
    pub schema: ApiSchema,
    /// The pool.
    pub db: DatabaseConnection,
}

/// All routes with their layers.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_request(())
                        .on_response(|res: &Response, latency: Duration, span: &Span| {
                            span.record("status", res.status().as_u16());
                            span.record("latency_ms", latency.as_secs_f64() * 1000.0);
                            tracing::info!("request finished");
                        }),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
}

fn request_span(req: &Request<Body>) -> Span {
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id,
        graphql.operation = Empty,
        status = Empty,
        latency_ms = Empty,
    )
}

/// Serves until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

async fn graphql_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: GraphQLRequest,
) -> Response {
    execute(&state, &headers, req.into_inner()).await
}

/// `GET /graphql`: a browser (no `query` parameter) gets GraphiQL; a client
/// with a `query` parameter gets the query executed.
async fn graphql_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(raw) = raw.filter(|q| !q.is_empty()) else {
        return Html(GraphiQLSource::build().endpoint("/graphql").finish()).into_response();
    };
    match async_graphql::http::parse_query_string(&raw) {
        Ok(req) => execute(&state, &headers, req).await,
        Err(err) => (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    }
}

async fn execute(state: &AppState, headers: &HeaderMap, req: async_graphql::Request) -> Response {
    if let Some(op) = req.operation_name.as_deref() {
        Span::current().record("graphql.operation", op);
    }
    let req = req.data(Loaders::new(&state.db));
    let resp = state.schema.execute(req).await;
    let spec_media_type = accepts_graphql_response_json(headers);
    // Under the GraphQL-over-HTTP media type a request that could not be
    // executed at all (parse or validation error: no `data`) is a 400.
    let status = if spec_media_type && resp.data == async_graphql::Value::Null && resp.is_err() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let content_type = if spec_media_type {
        HeaderValue::from_static("application/graphql-response+json; charset=utf-8")
    } else {
        HeaderValue::from_static("application/json")
    };
    match serde_json::to_vec(&resp) {
        Ok(body) => (status, [(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "could not serialise a GraphQL response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn accepts_graphql_response_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().starts_with(GRAPHQL_RESPONSE_JSON))
}

/// Liveness: the process answers; the database is not consulted.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers within two seconds.
async fn readyz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
        Err(_) => {
            tracing::warn!("readiness check timed out");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}
