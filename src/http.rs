//! HTTP wiring: routes, per-request GraphQL data, tracing and request ids,
//! and the defences in front of the executor.
//!
//! What a request meets, outside in: a request id, the request span
//! (`traced`: the caller's W3C trace context continued, see
//! `telemetry::trace`; the response's `traceresponse`), a response
//! counter for `/metrics`, CORS (origins from the settings, none by
//! default), a panic catcher (500, the server keeps serving), a time limit
//! (408) and a body size limit (413). `POST /graphql` then takes only
//! `application/json` (415 otherwise: a browser sends `text/plain`, forms
//! and multipart cross-site without a preflight) and one operation (a JSON
//! array, a batch, is a 400). A document named by hash (the persisted-query
//! extension) becomes the request's text, or the request is refused by
//! `trusted` (an unknown hash; in trusted-only mode, any text sent without
//! a registered hash). Before anything runs, the query text is held
//! to its limits by `limits` (tokens and bracket nesting in one pass over
//! the text; after the parse, fragment cycles, and depth, aliases and size
//! with every fragment measured once: all linear in the text) and NUL
//! characters are refused in the text and the variables; async-graphql then
//! counts the cost during validation (`graphql::cost`, which also holds the
//! whole preparation to `GRAPHQL_PREPARE_TIMEOUT`) and checks directives per
//! field. Every such refusal is an error with `extensions.code`
//! `BAD_USER_INPUT` and `extensions.limit` (a 400 under the GraphQL-over-HTTP
//! media type). The caller is then authenticated and held to a request rate
//! per token `sub` (per IP address without a token), and to a number of
//! requests in flight (`in_flight`): 429 with `Retry-After`.
//! async-graphql's own errors (parse, validation, coercion) get their codes
//! from `graphql::error::request`; a request that names no operation of its
//! document, or leaves a required variable without a value, is refused here
//! before execution. A request refused before execution is answered with
//! no `data` entry (`respond`), under either media type.
//! Before all of this, the connection was admitted by `listener` (connection
//! cap, header-read and keep-alive timeouts, requests per connection).

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_graphql::{ErrorExtensionValues, ServerError};
use axum::body::{Body, Bytes};
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, RawQuery, State,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tracing::{Instrument as _, Span, field::Empty};

use std::sync::Arc;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};

use crate::auth::{AnonymousAccessKind, AuthError, Verifier};
use crate::config::{GraphqlArgs, HttpArgs, RateLimit, RateLimitArgs};
use crate::domain::access::{self, AnonymousRead};
use crate::domain::actor::{Actor, Viewer};
use crate::domain::role::Scope;
use crate::graphql::error::code;
use crate::graphql::loaders::Loaders;
use crate::graphql::{ApiSchema, cost};
use crate::in_flight::InFlight;
use crate::metrics::Metrics;
use crate::service::identity::{DirectoryCache, Resolved};
use crate::telemetry::trace;

mod graphiql;
mod limits;
pub mod metrics;
pub mod subscriptions;
pub mod trusted;

pub use metrics::PublicMetrics;

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
    /// Limits on GraphQL documents, and production mode.
    pub limits: Arc<GraphqlArgs>,
    /// Whether GraphiQL is served (`GraphqlArgs::serves_graphiql`).
    pub graphiql: bool,
    /// Limits of the HTTP layer.
    pub http: Arc<HttpArgs>,
    /// The CORS policy built from the settings.
    pub cors: CorsLayer,
    /// Request rates per client.
    pub rate_limits: Arc<RateLimits>,
    /// Counters served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Who may read `/metrics` on the API's listener.
    pub public_metrics: PublicMetrics,
    /// Documents already checked and parsed, by query text.
    pub documents: Arc<DocumentCache>,
    /// The trusted documents, by hash, and whether only they run.
    pub trusted: Arc<trusted::TrustedDocuments>,
    /// Requests in flight per client.
    pub in_flight: Arc<InFlight>,
    /// Webhook settings (the worker's and endpoint management's).
    pub webhooks: Arc<crate::config::WebhookArgs>,
    /// Timer settings (the scheduler's).
    pub timers: Arc<crate::config::TimerArgs>,
    /// The subscription hub (also in the schema's data).
    pub hub: Arc<crate::service::hub::Hub>,
    /// WebSocket connections per client.
    pub subscribers: Arc<subscriptions::Clients>,
    /// The protocols (also in the schema's data).
    pub protocols: Arc<crate::service::protocols::Library>,
}

/// Query texts that passed the limits, with their parsed documents: partner
/// systems send the same few queries again and again, and parsing is a
/// measurable share of a small request. Bounded: when full it starts over
/// (simpler than an LRU and as good for a small, stable set of queries).
#[derive(Debug, Default)]
pub struct DocumentCache {
    entries: std::sync::RwLock<std::collections::HashMap<String, ExecutableDocument>>,
}

impl DocumentCache {
    const CAPACITY: usize = 512;
    const LONGEST: usize = 16 * 1024;

    fn get(&self, query: &str) -> Option<ExecutableDocument> {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).get(query).cloned()
    }

    fn put(&self, query: &str, doc: &ExecutableDocument) {
        if query.len() > Self::LONGEST {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= Self::CAPACITY {
            entries.clear();
        }
        entries.insert(query.to_owned(), doc.clone());
    }
}

/// All routes with their layers.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// All routes, plus `extra` ones, behind the same layers (for tests that
/// need a route the API does not have, e.g. one that panics).
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::from_fn(traced))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(middleware::from_fn_with_state(state.metrics.clone(), count_response))
        .layer(state.cors.clone())
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.http.request_timeout,
        ))
        .layer(DefaultBodyLimit::max(state.http.max_body_bytes));
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphiql/{file}", get(graphiql::asset))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::public))
        .merge(extra)
        .with_state(state)
        .layer(layers)
}

/// The CORS policy: browser pages of `origins` may call the API with a
/// token; no other origin may (no origin at all when the list is empty).
pub fn cors_layer(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let origins = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .map(|o| {
            anyhow::ensure!(
                o.starts_with("https://") || o.starts_with("http://"),
                "CORS origin {o:?} must start with https:// or http://"
            );
            HeaderValue::from_str(o.trim_end_matches('/'))
                .map_err(|_| anyhow::anyhow!("CORS origin {o:?} is not a valid header value"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("traceparent"),
            HeaderName::from_static("tracestate"),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static(trace::TRACERESPONSE),
            header::RETRY_AFTER,
        ])
        .max_age(Duration::from_secs(600)))
}

/// The request span around everything a request runs, continuing the
/// caller's trace (`telemetry::trace`), with its fields (README lists
/// them): filled in as they become known, `status` and `latency_ms` (in
/// milliseconds, rounded to the microsecond) when the response is ready,
/// then the line "request finished". The response carries
/// `traceresponse`.
async fn traced(req: Request<Body>, next: Next) -> Response {
    let started = Instant::now();
    let request_id =
        req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map_or("-", cut);
    let span = tracing::info_span!(
        "request",
        otel.kind = "server",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id,
        trace_id = Empty,
        operation_name = Empty,
        client = Empty,
        error_code = Empty,
        status = Empty,
        latency_ms = Empty,
    );
    let ids = trace::continue_trace(&span, req.headers());
    span.record("trace_id", tracing::field::display(ids.trace_id()));
    let mut res = trace::scope(ids, next.run(req)).instrument(span.clone()).await;
    span.record("status", res.status().as_u16());
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    span.record("latency_ms", micros as f64 / 1000.0);
    span.in_scope(|| tracing::info!("request finished"));
    res.headers_mut().insert(HeaderName::from_static(trace::TRACERESPONSE), ids.header());
    res
}

/// Notes a request's first error code on its span (`error_code`).
fn note_error_code(code: &str) {
    Span::current().record("error_code", code);
}

/// The listeners of `serve`: the API's, and the metrics listener when
/// `METRICS_LISTEN_ADDR` asks for one.
pub struct Listeners {
    /// The API's (`LISTEN_ADDR`).
    pub api: TcpListener,
    /// The metrics listener's (`METRICS_LISTEN_ADDR`).
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    /// Binds `api`, and `metrics` when given.
    pub async fn bind(api: SocketAddr, metrics: Option<SocketAddr>) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let api = TcpListener::bind(api).await.with_context(|| format!("binding {api}"))?;
        let metrics = match metrics {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding METRICS_LISTEN_ADDR {addr}"))?,
            ),
            None => None,
        };
        Ok(Self { api, metrics })
    }
}

/// Serves until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listeners: Listeners,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let settings = crate::listener::Settings::from(&*state.http);
    let metrics = state.metrics.clone();
    // The webhook worker runs as long as the server: it stops when the
    // shutdown begins (finishing the attempt in hand) or the server ends.
    let (stop_worker, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(crate::db::in_background(crate::service::webhooks::worker::run(
        state.db.clone(),
        state.webhooks.clone(),
        metrics.clone(),
        stopped,
    )));
    // So does the timer scheduler.
    let scheduler = tokio::spawn(crate::db::in_background(crate::service::timers::run(
        state.db.clone(),
        state.protocols.clone(),
        state.timers.clone(),
        stop_worker.subscribe(),
    )));
    // And the metrics listener. Its connections are not the API's: they
    // are counted nowhere, and held to a cap of their own.
    let metrics_listener = listeners.metrics.map(|listener| {
        let mut stopped = stop_worker.subscribe();
        let settings = crate::listener::Settings {
            max_connections: metrics::MAX_CONNECTIONS,
            ..settings.clone()
        };
        tokio::spawn(crate::listener::serve(
            listener,
            metrics::admin_router(state.clone()),
            settings,
            crate::metrics::ConnectionMetrics::default(),
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        ))
    });
    // Once, in the background: who the open cases written before the
    // queues existed (or by the bulk loader) wait on.
    let (db, catalog) = (state.db.clone(), state.protocols.current());
    tokio::spawn(crate::db::in_background(async move {
        match crate::service::awaiting::backfill(&db, &catalog).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(cases = n, "queues backfilled"),
            Err(err) => tracing::warn!(error = %err, "backfilling the queues failed"),
        }
    }));
    let shutdown = async move {
        shutdown.await;
        let _ = stop_worker.send(true);
    };
    let connections = metrics.connections.clone();
    let served =
        crate::listener::serve(listeners.api, router(state), settings, connections, shutdown).await;
    // Dropping the sender (if the shutdown never came) stops them too.
    let _ = worker.await;
    let _ = scheduler.await;
    if let Some(task) = metrics_listener {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "the metrics listener failed"),
            Err(err) => tracing::warn!(error = %err, "the metrics listener's task failed"),
        }
    }
    served
}

async fn count_response(
    State(metrics): State<Arc<Metrics>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let res = next.run(req).await;
    metrics.http_response(res.status().as_u16());
    res
}

/// A handler panicked: 500 with the fixed internal error; the message goes
/// to the log only.
fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = detail, "a handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, content_type(false))],
        error_body("internal error", code::INTERNAL_SERVER_ERROR),
    )
        .into_response()
}

/// The caller's IP address, when the server was started with it.
struct PeerIp(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// A `POST` body that declares itself `application/json` and fits the size
/// limit.
struct JsonBody(Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Response;

    async fn from_request(req: Request<Body>, state: &S) -> Result<Self, Self::Rejection> {
        let spec_media_type = accepts_graphql_response_json(req.headers());
        let essence = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if essence.as_deref() != Some("application/json") {
            return Err(refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a GraphQL request is sent as application/json",
                spec_media_type,
            ));
        }
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(JsonBody(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large",
                spec_media_type,
            )),
            Err(rejection) => Err(refusal(
                rejection.status(),
                "the request body could not be read",
                spec_media_type,
            )),
        }
    }
}

/// The body of a `POST`: `query` is required unless `extensions` name a
/// trusted document (`persistedQuery`, see `trusted`); other extensions are
/// ignored, but `extensions` must be a map (GraphQL over HTTP), as
/// `variables` must.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostBody {
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<async_graphql::Variables>,
    #[serde(default)]
    extensions: async_graphql::Extensions,
}

async fn graphql_post(
    State(state): State<AppState>,
    PeerIp(peer): PeerIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Response {
    let spec_media_type = accepts_graphql_response_json(&headers);
    // One operation per request: a batch would multiply every limit below.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return refusal(
            StatusCode::BAD_REQUEST,
            "batched requests are not accepted: send one operation per request",
            spec_media_type,
        );
    }
    match serde_json::from_slice::<PostBody>(&body) {
        Ok(body) if body.query.is_none() && !names_a_document(&body.extensions) => refusal(
            StatusCode::BAD_REQUEST,
            "the body is not a GraphQL request: missing field `query`",
            spec_media_type,
        ),
        Ok(body) => {
            let mut req = async_graphql::Request::new(body.query.unwrap_or_default());
            req.operation_name = body.operation_name;
            req.variables = body.variables.unwrap_or_default();
            req.extensions = body.extensions;
            execute(&state, &headers, peer, req, Method::POST).await
        }
        Err(err) => refusal(
            StatusCode::BAD_REQUEST,
            &format!("the body is not a GraphQL request: {err}"),
            spec_media_type,
        ),
    }
}

/// Whether a request's extensions name a document by hash (in any shape:
/// `trusted` says whether it is a good one).
fn names_a_document(extensions: &async_graphql::Extensions) -> bool {
    extensions.get("persistedQuery").is_some_and(|v| *v != async_graphql::Value::Null)
}

/// `GET /graphql`: a browser (no `query` parameter) gets GraphiQL
/// (`graphiql`) where it is served, a 404 elsewhere; a client with a
/// `query` parameter gets the query executed (never a mutation).
async fn graphql_get(
    State(state): State<AppState>,
    PeerIp(peer): PeerIp,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    conn: Option<Extension<crate::listener::Connection>>,
) -> Response {
    // A WebSocket upgrade: GraphQL subscriptions.
    if let Ok(ws) = ws {
        return subscriptions::upgrade(state, ws, &headers, peer, conn.map(|c| c.0)).await;
    }
    let Some(raw) = raw.filter(|q| !q.is_empty()) else {
        if !state.graphiql {
            return graphiql::not_served();
        }
        return graphiql::page(&headers);
    };
    match async_graphql::http::parse_query_string(&raw) {
        Ok(mut req) => {
            // async-graphql reads the name from `operation_name`; GraphQL
            // over HTTP calls the parameter `operationName`.
            req.operation_name = url::form_urlencoded::parse(raw.as_bytes())
                .find(|(key, _)| key == "operationName")
                .map(|(_, name)| name.into_owned())
                .or(req.operation_name);
            execute(&state, &headers, peer, req, Method::GET).await
        }
        Err(err) => refusal(
            StatusCode::BAD_REQUEST,
            &format!("the query string is not a GraphQL request: {err}"),
            accepts_graphql_response_json(&headers),
        ),
    }
}

async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    mut req: async_graphql::Request,
    method: Method,
) -> Response {
    let started = Instant::now();
    let deadline = started + state.limits.prepare_timeout;
    if let Some(op) = req.operation_name.as_deref() {
        Span::current().record("operation_name", cut(op));
    }
    let spec_media_type = accepts_graphql_response_json(headers);
    let request_id = RequestId(
        headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(|v| cut(v).to_owned()),
    );
    // A document named by hash becomes the request's text, which then
    // meets everything below like any text.
    if let Err(refused) = state.trusted.resolve(&mut req) {
        return untrusted(state, &refused, started, spec_media_type, &request_id);
    }
    let doc = match check_document(state, &req) {
        Ok(doc) => doc,
        Err(err) => {
            let resp = async_graphql::Response::from_errors(vec![err]);
            return respond(state, resp, REFUSED_LABEL, started, spec_media_type, &request_id);
        }
    };
    let selected = doc.as_ref().and_then(|d| selected_operation(d, req.operation_name.as_deref()));
    let operation = selected.map_or_else(String::new, |(name, _)| name.to_owned());
    if req.operation_name.is_none() && !operation.is_empty() {
        Span::current().record("operation_name", operation.as_str());
    }
    let ty = selected.map(|(_, op)| op.ty);
    // A refused request's operation name is the caller's word, not ours:
    // counted under one label, so that nobody can fill the label set.
    let refused = |code: &str| {
        state.metrics.graphql_request(REFUSED_LABEL, [Some(code)], started.elapsed());
    };

    // A GET must not change anything: a link or an image tag could
    // otherwise make a logged-in browser change a case.
    if method == Method::GET && ty == Some(OperationType::Mutation) {
        refused(code::BAD_USER_INPUT);
        let mut res = refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations are accepted only over POST",
            spec_media_type,
        );
        res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return res;
    }

    // A document of several operations must say which to run, by a name it
    // holds (async-graphql would say so only after validation, uncoded).
    if doc.is_some() && selected.is_none() {
        let message = match req.operation_name.as_deref() {
            Some(name) => format!("the document has no operation named {:?}", cut(name)),
            None => "the document has several operations: say which in operationName".to_owned(),
        };
        let mut err = ServerError::new(message, None);
        set_code(&mut err, code::OPERATION_RESOLUTION_FAILURE);
        let resp = async_graphql::Response::from_errors(vec![err]);
        return respond(state, resp, REFUSED_LABEL, started, spec_media_type, &request_id);
    }
    // A required variable with no value is a request error (the spec's
    // CoerceVariableValues); async-graphql would find it only in the field
    // that uses it, after execution began.
    if let Some(err) = selected.and_then(|(_, op)| missing_variable(op, &req.variables)) {
        let resp = async_graphql::Response::from_errors(vec![err]);
        return respond(state, resp, REFUSED_LABEL, started, spec_media_type, &request_id);
    }

    let authenticated = tokio::time::timeout_at(
        deadline.into(),
        authenticate(state, headers, doc.as_ref(), selected.map(|(_, op)| op)),
    )
    .await
    .unwrap_or_else(|_| {
        tracing::warn!("authentication did not finish before the preparation deadline");
        Err(Refusal::Late)
    });
    let viewer = match authenticated {
        Ok(viewer) => {
            if let Viewer::Actor(actor) = &viewer {
                Span::current()
                    .record("client", crate::telemetry::client_hash(&actor.sub).as_str());
            }
            viewer
        }
        Err(Refusal::Unauthenticated(err)) => {
            refused(code::UNAUTHENTICATED);
            return unauthenticated(&err, spec_media_type);
        }
        Err(Refusal::Internal) => {
            refused(code::INTERNAL_SERVER_ERROR);
            return internal_error(spec_media_type, &request_id);
        }
        Err(Refusal::Late) => {
            refused(code::SERVICE_UNAVAILABLE);
            return service_unavailable(spec_media_type);
        }
    };
    let (kind, key) = rate_key(&viewer, peer);
    let cost_key = format!("{}:{key}", kind.as_str());
    let in_flight = state.in_flight.try_acquire(kind, &key);
    let allowance = match state.rate_limits.check(kind, key) {
        Ok(allowance) => allowance,
        Err((wait, allowance)) => {
            refused(code::RATE_LIMITED);
            state.metrics.rate_limited(kind.as_str());
            let mut res = too_many_requests(wait, spec_media_type);
            if let Some(a) = allowance {
                res.headers_mut().extend(a.headers());
            }
            return res;
        }
    };
    // Held until the response is built (or the caller goes away).
    let Some(_in_flight) = in_flight else {
        refused(code::RATE_LIMITED);
        state.metrics.in_flight_limited(kind.as_str());
        return too_many_in_flight(spec_media_type);
    };

    if let Some(doc) = doc {
        req.set_parsed_query(doc);
    }
    // Only a caller with a token names the operations counted in metrics.
    let label =
        if matches!(viewer, Viewer::Actor(_)) { operation.as_str() } else { ANONYMOUS_LABEL };
    let loaders = Loaders::new(&state.db, &viewer, request_id.0.as_deref());
    let charge = state.rate_limits.has_cost_limit().then(|| {
        let limits = state.rate_limits.clone();
        let key = cost_key.clone();
        Arc::new(move |cost: usize| limits.charge(&key, cost)) as Arc<cost::Charge>
    });
    let budget = cost::Budget { max_cost: state.limits.max_cost, deadline, charge };
    let req = req
        .data(loaders)
        .data(viewer)
        .data(request_id.clone())
        .data(budget)
        .data(state.webhooks.clone());
    let resp = state.schema.execute(req).await;
    let mut res = respond(state, resp, label, started, spec_media_type, &request_id);
    if let Some(a) = allowance {
        res.headers_mut().extend(a.headers());
    }
    res
}

/// A request refused by the trusted documents, answered like any refusal
/// before execution, except that an unknown hash is 404 under the
/// GraphQL-over-HTTP media type (as Apollo Router answers it) and 200 under
/// `application/json` (as Apollo Server does, for its clients' persisted-query
/// link), and never cached: the manifest of the next start may hold it.
fn untrusted(
    state: &AppState,
    refused: &trusted::Refused,
    started: Instant,
    spec_media_type: bool,
    request_id: &RequestId,
) -> Response {
    let resp = async_graphql::Response::from_errors(vec![refused.error()]);
    let mut res = respond(state, resp, REFUSED_LABEL, started, spec_media_type, request_id);
    if *refused == trusted::Refused::NotFound {
        if spec_media_type {
            *res.status_mut() = StatusCode::NOT_FOUND;
        }
        res.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache, must-revalidate"),
        );
    }
    res
}

/// Holds a request's text and variables to the document limits, parsing
/// the text once (cached by text); a document that does not parse goes on
/// (`None`), so the caller sees async-graphql's syntax error.
fn check_document(
    state: &AppState,
    req: &async_graphql::Request,
) -> Result<Option<ExecutableDocument>, ServerError> {
    let checked = match state.documents.get(&req.query) {
        Some(doc) => Ok(Some(doc)),
        None => limits::check_document(&state.limits, &req.query).inspect(|doc| {
            if let Some(d) = doc {
                state.documents.put(&req.query, d);
            }
        }),
    };
    let checked = checked.and_then(|doc| {
        limits::refuse_nul_in_variables(&req.variables)?;
        Ok(doc)
    });
    checked.map_err(|refused| {
        let measure = refused.value.zip(refused.max);
        let mut err = cost::refusal(refused.message, refused.limit, measure);
        if let Some(field) = refused.field {
            err.extensions.get_or_insert_with(ErrorExtensionValues::default).set("field", field);
        }
        err
    })
}

/// The metrics label of requests refused before they ran.
const REFUSED_LABEL: &str = "(refused)";

/// The metrics label of the requests of callers without a token.
const ANONYMOUS_LABEL: &str = "(anonymous)";

/// A caller's header or name, cut to a length fit for a log line.
fn cut(text: &str) -> &str {
    const MOST: usize = 128;
    match text.char_indices().nth(MOST) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Finishes a GraphQL response: codes on refusals, the request id on
/// internal errors, the trace id on every error (and the first code on the
/// request span), metrics, status and media type.
fn respond(
    state: &AppState,
    mut resp: async_graphql::Response,
    operation: &str,
    started: Instant,
    spec_media_type: bool,
    request_id: &RequestId,
) -> Response {
    // A request refused before execution (parse, validation, a limit) has
    // no data and no error with a path; an executed one whose root field
    // failed has null data and an error with a path.
    let executed =
        resp.data != async_graphql::Value::Null || resp.errors.iter().any(|e| !e.path.is_empty());
    let trace_id = (!resp.errors.is_empty())
        .then(trace::current)
        .flatten()
        .map(|ids| async_graphql::Value::String(ids.trace_id().to_string()));
    for err in &mut resp.errors {
        let code = err.extensions.as_ref().and_then(|e| e.get("code")).cloned();
        match code {
            // `graphql::error::request` codes async-graphql's own errors;
            // anything still without a code is one of its prepare steps
            // this server does not expect.
            None if !executed => set_code(err, code::GRAPHQL_VALIDATION_FAILED),
            None => set_code(err, code::INTERNAL_SERVER_ERROR),
            Some(async_graphql::Value::String(c)) if c == code::INTERNAL_SERVER_ERROR => {
                if let Some(id) = &request_id.0 {
                    err.extensions
                        .get_or_insert_with(ErrorExtensionValues::default)
                        .set("requestId", id.as_str());
                }
            }
            _ => {}
        }
        if let Some(id) = &trace_id {
            err.extensions
                .get_or_insert_with(ErrorExtensionValues::default)
                .set("traceId", id.clone());
        }
    }
    if let Some(async_graphql::Value::String(code)) =
        resp.errors.first().and_then(|e| e.extensions.as_ref()).and_then(|x| x.get("code"))
    {
        note_error_code(code);
    }
    let operation = if executed { operation } else { REFUSED_LABEL };
    state.metrics.graphql_request(
        operation,
        resp.errors.iter().map(|e| match e.extensions.as_ref().and_then(|x| x.get("code")) {
            Some(async_graphql::Value::String(c)) => Some(c.as_str()),
            _ => None,
        }),
        started.elapsed(),
    );
    // Under the GraphQL-over-HTTP media type a request that could not be
    // executed at all (parse or validation error: no `data`) is a 400.
    let retry_after = (!executed).then(|| retry_after(&resp)).flatten();
    let status = if retry_after.is_some() {
        StatusCode::TOO_MANY_REQUESTS
    } else if spec_media_type && !executed && resp.is_err() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let max = state.limits.max_response_bytes;
    let mut body = Bounded { bytes: Vec::with_capacity(4096), room: max };
    // Nothing ran: the response has no `data` entry (GraphQL over HTTP,
    // and the GraphQL spec's "before execution begins").
    let written = ResponseBody {
        data: executed.then_some(&resp.data),
        errors: &resp.errors,
        extensions: &resp.extensions,
    };
    match serde_json::to_writer(&mut body, &written) {
        Ok(()) => {
            let mut res =
                (status, [(header::CONTENT_TYPE, content_type(spec_media_type))], body.bytes)
                    .into_response();
            if let Some(secs) = retry_after {
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            res
        }
        Err(err) if err.is_io() => {
            tracing::warn!(max_bytes = max, "a response was over its size limit and was not sent");
            let mut err = cost::refusal(
                format!(
                    "the response would be larger than {max} bytes and was not sent (a change \
                     the request made stays made); ask for fewer fields or smaller pages"
                ),
                "responseBytes",
                None,
            );
            let ext = err.extensions.get_or_insert_with(ErrorExtensionValues::default);
            ext.set("code", code::RESPONSE_TOO_LARGE);
            ext.set("max", max);
            let body = serde_json::json!({ "data": null, "errors": [err] });
            (status, [(header::CONTENT_TYPE, content_type(spec_media_type))], body.to_string())
                .into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "could not serialise a GraphQL response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The `retryAfter`, in seconds, of a request refused because its client
/// has spent its allowance of cost (its `RATE_LIMITED` error); `None` for
/// any other response.
fn retry_after(resp: &async_graphql::Response) -> Option<u64> {
    resp.errors.iter().find_map(|e| {
        let ext = e.extensions.as_ref()?;
        match (ext.get("code"), ext.get("retryAfter")) {
            (Some(async_graphql::Value::String(c)), Some(async_graphql::Value::Number(n)))
                if c == code::RATE_LIMITED =>
            {
                n.as_u64()
            }
            _ => None,
        }
    })
}

/// A GraphQL response as it is written: `data` only when the request was
/// executed.
#[derive(serde::Serialize)]
struct ResponseBody<'r> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'r async_graphql::Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'r [ServerError],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extensions: &'r std::collections::BTreeMap<String, async_graphql::Value>,
}

/// A response body that refuses to grow past its room, so that an
/// over-large response is never written out in full (the result it is
/// written from is bounded before execution, by the cost).
struct Bounded {
    bytes: Vec<u8>,
    room: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.room - self.bytes.len().min(self.room) {
            return Err(std::io::Error::other("the response is over its size limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn set_code(err: &mut ServerError, value: &str) {
    err.extensions.get_or_insert_with(ErrorExtensionValues::default).set("code", value);
}

/// Kinds of client, each with its own rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKind {
    /// A token with a role.
    People,
    /// A machine client with `cases:read`.
    CasesRead,
    /// A machine client with only `statistics:read`.
    StatisticsRead,
    /// No token; keyed by IP address.
    Anonymous,
}

impl ClientKind {
    /// The label in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::People => "people",
            ClientKind::CasesRead => "cases_read",
            ClientKind::StatisticsRead => "statistics_read",
            ClientKind::Anonymous => "anonymous",
        }
    }
}

fn rate_key(viewer: &Viewer, peer: Option<IpAddr>) -> (ClientKind, String) {
    match viewer {
        Viewer::Anonymous => {
            (ClientKind::Anonymous, peer.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()))
        }
        Viewer::Actor(a) if a.role.is_some() => (ClientKind::People, a.sub.clone()),
        Viewer::Actor(a) if a.has_scope(Scope::CasesRead) => (ClientKind::CasesRead, a.sub.clone()),
        Viewer::Actor(a) => (ClientKind::StatisticsRead, a.sub.clone()),
    }
}

/// A keyed GCRA limiter that reports what is left after each check.
type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Where a client stands against its request rate, for the `RateLimit`
/// and `RateLimit-Policy` headers (draft-ietf-httpapi-ratelimit-headers):
/// the policy's quota (the burst) and window (the time the whole burst
/// takes to refill), what is left, and the seconds until it is full again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Requests of the policy (its burst).
    pub quota: u32,
    /// Seconds in which the whole quota refills.
    pub window_secs: u64,
    /// Requests left now.
    pub remaining: u32,
    /// Seconds until the quota is full again.
    pub reset_secs: u64,
}

impl Allowance {
    fn of(quota: Quota, remaining: u32) -> Self {
        let per = quota.replenish_interval();
        let burst = quota.burst_size().get();
        let secs = |n: u32| {
            let d = per * n;
            d.as_secs() + u64::from(d.subsec_nanos() > 0)
        };
        Self {
            quota: burst,
            window_secs: secs(burst).max(1),
            remaining,
            reset_secs: secs(burst.saturating_sub(remaining)),
        }
    }

    /// The two headers, for the policy named `requests`.
    fn headers(&self) -> [(HeaderName, HeaderValue); 2] {
        let policy = format!("\"requests\";q={};w={}", self.quota, self.window_secs);
        let now = format!("\"requests\";r={};t={}", self.remaining, self.reset_secs);
        [
            (
                HeaderName::from_static("ratelimit-policy"),
                HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("")),
            ),
            (
                HeaderName::from_static("ratelimit"),
                HeaderValue::from_str(&now).unwrap_or(HeaderValue::from_static("")),
            ),
        ]
    }
}

/// Request rates per client (GCRA, through `governor`): one keyed limiter
/// per kind of client; a kind whose setting is `off` has none. Per server
/// instance: several instances each allow a client its whole rate.
pub struct RateLimits {
    /// Cost per client, keyed by kind and key.
    cost: Option<Limiter>,
    people: Option<Limiter>,
    cases_read: Option<Limiter>,
    statistics_read: Option<Limiter>,
    anonymous: Option<Limiter>,
    checks: AtomicU64,
    clock: DefaultClock,
}

impl RateLimits {
    /// The limiters of the settings.
    pub fn new(args: &RateLimitArgs) -> Self {
        fn limiter(limit: RateLimit) -> Option<Limiter> {
            let rate = NonZeroU32::new(limit.per_second)?;
            let burst = NonZeroU32::new(limit.burst)?;
            Some(
                RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
                    .with_middleware::<StateInformationMiddleware>(),
            )
        }
        Self {
            cost: limiter(args.rate_limit_cost),
            people: limiter(args.rate_limit_people),
            cases_read: limiter(args.rate_limit_cases_read),
            statistics_read: limiter(args.rate_limit_statistics_read),
            anonymous: limiter(args.rate_limit_anonymous),
            checks: AtomicU64::new(0),
            clock: DefaultClock::default(),
        }
    }

    fn limiter(&self, kind: ClientKind) -> Option<&Limiter> {
        match kind {
            ClientKind::People => self.people.as_ref(),
            ClientKind::CasesRead => self.cases_read.as_ref(),
            ClientKind::StatisticsRead => self.statistics_read.as_ref(),
            ClientKind::Anonymous => self.anonymous.as_ref(),
        }
    }

    /// Takes one request of `key`'s allowance and says what is left
    /// (`None`: no limit for this kind), or says how long to wait and the
    /// allowance, empty.
    pub fn check(
        &self,
        kind: ClientKind,
        key: String,
    ) -> Result<Option<Allowance>, (Duration, Option<Allowance>)> {
        let Some(limiter) = self.limiter(kind) else { return Ok(None) };
        // Now and then, forget clients whose allowance is full again, so
        // that the state does not grow with every `sub` or address seen.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            for l in
                [&self.cost, &self.people, &self.cases_read, &self.statistics_read, &self.anonymous]
                    .into_iter()
                    .flatten()
            {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
        match limiter.check_key(&key) {
            Ok(snapshot) => {
                Ok(Some(Allowance::of(snapshot.quota(), snapshot.remaining_burst_capacity())))
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err((wait, Some(Allowance::of(not_until.quota(), 0))))
            }
        }
    }
}

impl RateLimits {
    /// Whether requests are charged their cost.
    pub fn has_cost_limit(&self) -> bool {
        self.cost.is_some()
    }

    /// Takes `cost` from the allowance of the client `key` (kind and key),
    /// or says how long to wait (`None`: it can never fit).
    pub fn charge(&self, key: &str, cost: usize) -> Result<(), Option<Duration>> {
        let Some(limiter) = &self.cost else { return Ok(()) };
        let Some(n) = u32::try_from(cost).ok().and_then(NonZeroU32::new) else {
            return if cost == 0 { Ok(()) } else { Err(None) };
        };
        match limiter.check_key_n(&key.to_owned(), n) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(not_until)) => Err(Some(not_until.wait_time_from(self.clock.now()))),
            Err(_) => Err(None),
        }
    }
}

/// 429 with `Retry-After` in whole seconds (at least one).
fn too_many_requests(wait: Duration, spec_media_type: bool) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::RETRY_AFTER, HeaderValue::from(secs)),
            (header::CONTENT_TYPE, content_type(spec_media_type)),
        ],
        error_body(&format!("too many requests; retry after {secs} s"), code::RATE_LIMITED),
    )
        .into_response()
}

/// 429: the client has its most requests executing already.
fn too_many_in_flight(spec_media_type: bool) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::RETRY_AFTER, HeaderValue::from(1)),
            (header::CONTENT_TYPE, content_type(spec_media_type)),
        ],
        error_body(
            "too many requests in flight for this client; retry after 1 s",
            code::RATE_LIMITED,
        ),
    )
        .into_response()
}

/// A request refused before GraphQL: a status with an error body.
fn refusal(status: StatusCode, message: &str, spec_media_type: bool) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, content_type(spec_media_type))],
        error_body(message, code::BAD_USER_INPUT),
    )
        .into_response()
}

enum Refusal {
    Unauthenticated(AuthError),
    Internal,
    /// Authentication did not finish before the preparation deadline (a
    /// slow key-set fetch): try again shortly.
    Late,
}

/// Who is calling: a verified token whose codes name a partnership (and
/// agency) here, or nobody, for the operations the settings open to all.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    doc: Option<&ExecutableDocument>,
    op: Option<&OperationDefinition>,
) -> Result<Viewer, Refusal> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return if anonymous_may_run(&state.verifier, doc, op) {
            Ok(Viewer::Anonymous)
        } else {
            Err(Refusal::Unauthenticated(AuthError::Missing))
        };
    };
    let token = bearer(value.to_str().ok())?;
    authenticate_token(state, token).await.map(|(viewer, _)| viewer)
}

/// The token of an `Authorization` value (`Bearer …`).
fn bearer(value: Option<&str>) -> Result<&str, Refusal> {
    value
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(Refusal::Unauthenticated(AuthError::Malformed))
}

/// The actor of a verified token whose codes name a partnership (and
/// agency) here, with the token's expiry (`exp`).
async fn authenticate_token(
    state: &AppState,
    token: &str,
) -> Result<(Viewer, Option<f64>), Refusal> {
    let claims = state.verifier.verify(token).await.map_err(Refusal::Unauthenticated)?;
    let expires = claims.expires;
    let resolved = state
        .directory
        .resolve(&state.db, &claims.partnership, claims.agency.as_deref())
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "resolving token codes failed");
            Refusal::Internal
        })?;
    match resolved {
        Resolved::Found { partnership, agency } => Ok((
            Viewer::Actor(Actor {
                issuer: claims.issuer,
                sub: claims.sub,
                role: claims.role,
                scopes: claims.scopes,
                partnership,
                agency,
            }),
            expires,
        )),
        Resolved::UnknownPartnership => {
            Err(Refusal::Unauthenticated(AuthError::UnknownPartnership))
        }
        Resolved::UnknownAgency => Err(Refusal::Unauthenticated(AuthError::UnknownAgency)),
        Resolved::DeactivatedAgency => Err(Refusal::Unauthenticated(AuthError::DeactivatedAgency)),
    }
}

/// Whether every root field of the operation is one the settings open to
/// anonymous callers. A query that does not parse is let through so the
/// caller sees the syntax error; it can return no data.
fn anonymous_may_run(
    verifier: &Verifier,
    doc: Option<&ExecutableDocument>,
    op: Option<&OperationDefinition>,
) -> bool {
    let Some(doc) = doc else { return true };
    match op {
        Some(op) if op.ty == OperationType::Query => {
            root_fields_open(verifier, doc, &op.selection_set.node, 0)
        }
        _ => false,
    }
}

/// The operation the request selects, with its name (empty when anonymous).
fn selected_operation<'d>(
    doc: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<(&'d str, &'d OperationDefinition)> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), None) => Some(("", &op.node)),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get_key_value(name).map(|(n, op)| (n.as_str(), &op.node))
        }
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.iter().next().map(|(n, op)| (n.as_str(), &op.node))
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The first variable the operation requires (non-null, no default) that
/// the request gives no value: `BAD_USER_INPUT` naming it.
fn missing_variable(
    op: &OperationDefinition,
    variables: &async_graphql::Variables,
) -> Option<ServerError> {
    op.variable_definitions.iter().find_map(|def| {
        let def = &def.node;
        let given = variables.get(&def.name.node).is_some_and(|v| *v != async_graphql::Value::Null);
        if def.var_type.node.nullable || def.default_value.is_some() || given {
            return None;
        }
        let name = def.name.node.as_str();
        let mut err = ServerError::new(
            format!("variable ${name} of type {} is required", def.var_type.node),
            Some(def.name.pos),
        );
        let ext = err.extensions.get_or_insert_with(ErrorExtensionValues::default);
        ext.set("code", code::BAD_USER_INPUT);
        ext.set("variable", name);
        Some(err)
    })
}

/// Whether every root field `set` selects is open to an anonymous caller:
/// `domain::access::anonymous_root_field` says under which opening, the
/// settings say which openings are on.
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
        Selection::Field(f) => match access::anonymous_root_field(f.node.name.node.as_str()) {
            AnonymousRead::Always => true,
            AnonymousRead::Introspection => {
                verifier.anonymous_allows(AnonymousAccessKind::Introspection)
            }
            AnonymousRead::Directory => verifier.anonymous_allows(AnonymousAccessKind::Directory),
            AnonymousRead::Never => false,
        },
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

/// The body of a request refused before execution: no `data` entry.
fn error_body(message: &str, code: &str) -> Vec<u8> {
    note_error_code(code);
    let mut extensions = serde_json::json!({ "code": code });
    if let Some(ids) = trace::current() {
        extensions["traceId"] = ids.trace_id().to_string().into();
    }
    serde_json::json!({ "errors": [{ "message": message, "extensions": extensions }] })
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

/// 503 with `Retry-After: 1`: the request could not be prepared in time
/// through no fault of its own.
fn service_unavailable(spec_media_type: bool) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::RETRY_AFTER, HeaderValue::from(1)),
            (header::CONTENT_TYPE, content_type(spec_media_type)),
        ],
        error_body(
            "the token could not be checked in time; retry after 1 s",
            code::SERVICE_UNAVAILABLE,
        ),
    )
        .into_response()
}

fn internal_error(spec_media_type: bool, request_id: &RequestId) -> Response {
    note_error_code(code::INTERNAL_SERVER_ERROR);
    let mut extensions =
        serde_json::json!({ "code": code::INTERNAL_SERVER_ERROR, "requestId": request_id.0 });
    if let Some(ids) = trace::current() {
        extensions["traceId"] = ids.trace_id().to_string().into();
    }
    let body = serde_json::json!({
        "errors": [{ "message": "internal error", "extensions": extensions }],
    });
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, content_type(spec_media_type))],
        body.to_string(),
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

/// Readiness: the database answers within two seconds. The body also says
/// when the directory is empty (still ready: a directory may be loaded
/// while the server runs).
async fn readyz(State(state): State<AppState>) -> Response {
    let check = async {
        state.db.ping().await?;
        // A database that answers but cannot be read (not migrated yet) is
        // still reachable: the directory is then not spoken of.
        Ok::<_, sea_orm::DbErr>(
            crate::service::readiness::directory_is_empty(&state.db).await.unwrap_or(false),
        )
    };
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(false)) => (StatusCode::OK, "ready").into_response(),
        Ok(Ok(true)) => {
            (StatusCode::OK, format!("ready; {}", crate::service::readiness::EMPTY_DIRECTORY))
                .into_response()
        }
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
