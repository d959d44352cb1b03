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

use std::sync::Arc;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};

use crate::auth::{AnonymousAccessKind, AuthError, Verifier};
use crate::domain::actor::{Actor, Viewer};
use crate::graphql::ApiSchema;
use crate::graphql::error::code;
use crate::graphql::loaders::Loaders;
use crate::service::identity::{DirectoryCache, Resolved};

/// The media type of the GraphQL-over-HTTP specification.
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// The request id of the request being executed, for audit events.
#[derive(Debug, Clone)]
pub struct RequestId(pub Option<String>);

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The schema, built once.
    pub schema: ApiSchema,
    /// The pool.
    pub db: DatabaseConnection,
    /// Verifies bearer tokens.
    pub verifier: Arc<Verifier>,
    /// Partnership and agency codes of tokens, resolved to ids.
    pub directory: Arc<DirectoryCache>,
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
        // A GET must not change anything: a link or an image tag could
        // otherwise make a logged-in browser change a case.
        Ok(req) if is_mutation(&req) => (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, HeaderValue::from_static("POST"))],
            "mutations are accepted only over POST",
        )
            .into_response(),
        Ok(req) => execute(&state, &headers, req).await,
        Err(err) => (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    }
}

async fn execute(state: &AppState, headers: &HeaderMap, req: async_graphql::Request) -> Response {
    if let Some(op) = req.operation_name.as_deref() {
        Span::current().record("graphql.operation", op);
    }
    let spec_media_type = accepts_graphql_response_json(headers);
    let viewer = match authenticate(state, headers, &req).await {
        Ok(viewer) => viewer,
        Err(Refusal::Unauthenticated(err)) => return unauthenticated(&err, spec_media_type),
        Err(Refusal::Internal) => return internal_error(spec_media_type),
    };
    let request_id = RequestId(
        headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(128).collect()),
    );
    let loaders = Loaders::new(&state.db, &viewer, request_id.0.as_deref());
    let req = req.data(loaders).data(viewer).data(request_id);
    let resp = state.schema.execute(req).await;
    // Under the GraphQL-over-HTTP media type a request that could not be
    // executed at all (parse or validation error: no `data`) is a 400.
    let status = if spec_media_type && resp.data == async_graphql::Value::Null && resp.is_err() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    match serde_json::to_vec(&resp) {
        Ok(body) => {
            (status, [(header::CONTENT_TYPE, content_type(spec_media_type))], body).into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "could not serialise a GraphQL response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

enum Refusal {
    Unauthenticated(AuthError),
    Internal,
}

/// Who is calling: a verified token whose codes name a partnership (and
/// agency) here, or nobody, for the operations the settings open to all.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    req: &async_graphql::Request,
) -> Result<Viewer, Refusal> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return if anonymous_may_run(&state.verifier, req) {
            Ok(Viewer::Anonymous)
        } else {
            Err(Refusal::Unauthenticated(AuthError::Missing))
        };
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(Refusal::Unauthenticated(AuthError::Malformed))?;
    let claims = state.verifier.verify(token).await.map_err(Refusal::Unauthenticated)?;
    let resolved = state
        .directory
        .resolve(&state.db, &claims.partnership, claims.agency.as_deref())
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "resolving token codes failed");
            Refusal::Internal
        })?;
    match resolved {
        Resolved::Found { partnership, agency } => Ok(Viewer::Actor(Actor {
            sub: claims.sub,
            role: claims.role,
            scopes: claims.scopes,
            partnership,
            agency,
        })),
        Resolved::UnknownPartnership => {
            Err(Refusal::Unauthenticated(AuthError::UnknownPartnership))
        }
        Resolved::UnknownAgency => Err(Refusal::Unauthenticated(AuthError::UnknownAgency)),
    }
}

/// Whether every root field of the operation is one the settings open to
/// anonymous callers. A query that does not parse is let through so the
/// caller sees the syntax error; it can return no data.
fn anonymous_may_run(verifier: &Verifier, req: &async_graphql::Request) -> bool {
    let Ok(doc) = async_graphql::parser::parse_query(&req.query) else { return true };
    match selected_operation(&doc, req.operation_name.as_deref()) {
        Some(op) if op.ty == OperationType::Query => {
            root_fields_open(verifier, &doc, &op.selection_set.node, 0)
        }
        _ => false,
    }
}

/// Whether the operation the request selects is a mutation.
fn is_mutation(req: &async_graphql::Request) -> bool {
    async_graphql::parser::parse_query(&req.query).is_ok_and(|doc| {
        selected_operation(&doc, req.operation_name.as_deref())
            .is_some_and(|op| op.ty == OperationType::Mutation)
    })
}

fn selected_operation<'d>(
    doc: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<&'d async_graphql::parser::types::OperationDefinition> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| &op.node)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

fn root_fields_open(
    verifier: &Verifier,
    doc: &ExecutableDocument,
    set: &SelectionSet,
    depth: usize,
) -> bool {
    // Fragments may nest; a cycle is a validation error anyway.
    if depth > 8 {
        return false;
    }
    set.items.iter().all(|item| match &item.node {
        Selection::Field(f) => {
            let name = f.node.name.node.as_str();
            if name.starts_with("__") {
                name == "__typename"
                    || verifier.anonymous_allows(AnonymousAccessKind::Introspection)
            } else {
                matches!(name, "partnerships" | "agencies")
                    && verifier.anonymous_allows(AnonymousAccessKind::Directory)
            }
        }
        Selection::InlineFragment(f) => {
            root_fields_open(verifier, doc, &f.node.selection_set.node, depth + 1)
        }
        Selection::FragmentSpread(s) => {
            doc.fragments.get(&s.node.fragment_name.node).is_some_and(|frag| {
                root_fields_open(verifier, doc, &frag.node.selection_set.node, depth + 1)
            })
        }
    })
}

fn error_body(message: &str, code: &str) -> Vec<u8> {
    serde_json::json!({
        "data": null,
        "errors": [{ "message": message, "extensions": { "code": code } }],
    })
    .to_string()
    .into_bytes()
}

fn content_type(spec_media_type: bool) -> HeaderValue {
    if spec_media_type {
        HeaderValue::from_static("application/graphql-response+json; charset=utf-8")
    } else {
        HeaderValue::from_static("application/json")
    }
}

/// 401 with `WWW-Authenticate` (RFC 6750) and an `UNAUTHENTICATED` error.
fn unauthenticated(err: &AuthError, spec_media_type: bool) -> Response {
    let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{err}\"");
    let challenge = HeaderValue::from_str(&challenge)
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"invalid_token\""));
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, challenge),
            (header::CONTENT_TYPE, content_type(spec_media_type)),
        ],
        error_body(&err.to_string(), code::UNAUTHENTICATED),
    )
        .into_response()
}

fn internal_error(spec_media_type: bool) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, content_type(spec_media_type))],
        error_body("internal error", code::INTERNAL_SERVER_ERROR),
    )
        .into_response()
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
