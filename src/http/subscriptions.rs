//! GraphQL subscriptions over WebSocket: the `graphql-transport-ws`
//! protocol (the one the `graphql-ws` client speaks) on `GET /graphql`
//! with an upgrade.
//!
//! async-graphql speaks the protocol (`async_graphql::http::WebSocket`);
//! this module holds a socket to what every request over HTTP is held to,
//! and to the protocol's close codes:
//!
//! - The token: in the `connection_init` payload as `{"Authorization":
//!   "Bearer …"}` (what GraphiQL and the common clients send), or in the
//!   upgrade's `Authorization` header; the payload's wins when both come.
//!   None, or one that does not verify: closed with 4401. No
//!   `connection_init` within `SUBSCRIPTION_INIT_TIMEOUT`: 4408. The
//!   connection is closed with 4401 when the token expires (`exp`).
//! - A `subscribe` may name a trusted document by hash in its
//!   `extensions` (`persistedQuery`), as a POST may, and in trusted-only
//!   mode must (`trusted`).
//! - Every `subscribe` is held to the document limits and the cost limit
//!   (the same `check_document` and `cost::CostLimit` as a POST), to the
//!   caller's request rate and cost allowance, and to
//!   `SUBSCRIPTIONS_PER_CONNECTION`; only subscription operations run here
//!   (queries and mutations go over POST, with their other defences).
//! - A client (the key of its rate limit) holds at most
//!   `SUBSCRIPTION_CONNECTIONS_PER_CLIENT` authenticated connections;
//!   one more is closed with 4429.
//! - A subscriber that does not take a message within
//!   `SUBSCRIPTION_SEND_TIMEOUT` is dropped (its socket closed) rather
//!   than buffered for: each subscription reads the log only as fast as
//!   its messages are taken (`service::hub`).
//! - The connection stays counted against `MAX_CONNECTIONS`, and is never
//!   shed as idle, while the socket is open (`listener::Upgraded`); on
//!   shutdown it is closed with 1001.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_graphql::http::{WebSocket as GqlWebSocket, WebSocketProtocols as Protocols, WsMessage};
use async_graphql::parser::types::OperationType;
use async_graphql::{Data, ErrorExtensionValues, Executor, Response, ServerError};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::Response as HttpResponse;
use futures_util::stream::BoxStream;
use futures_util::{SinkExt as _, StreamExt as _};

use super::{
    AppState, Refusal, RequestId, authenticate_token, bearer, rate_key, selected_operation,
};
use crate::domain::actor::Viewer;
use crate::graphql::cost;
use crate::graphql::error::code;
use crate::listener::Connection;
use crate::metrics::Metrics;

/// The subprotocol spoken.
const PROTOCOL: &str = "graphql-transport-ws";

/// A socket's read buffer (it grows for a longer message, up to the body
/// limit).
const SOCKET_READ_BUFFER: usize = 8 * 1024;

/// What a socket's writes gather before they go to the connection.
const SOCKET_WRITE_BUFFER: usize = 4 * 1024;

/// Close codes of `graphql-transport-ws` (and RFC 6455).
mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const INTERNAL: u16 = 1011;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const BAD_REQUEST: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const SUBPROTOCOL: u16 = 4406;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const TOO_MANY: u16 = 4429;
}

/// The acknowledgement async-graphql sends after a successful init.
const ACK: &str = r#"{"type":"connection_ack"}"#;

/// Authenticated WebSocket connections per client (the key of its rate
/// limit).
#[derive(Debug)]
pub struct Clients {
    most: u32,
    open: Mutex<HashMap<String, u32>>,
}

impl Clients {
    /// At most `most` connections per client.
    pub fn new(most: u32) -> Self {
        Self { most, open: Mutex::default() }
    }

    /// A place for one more connection of `key`, or `None` at the cap.
    fn admit(self: &Arc<Self>, key: String) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(key.clone()).or_default();
        if *n >= self.most {
            return None;
        }
        *n += 1;
        Some(Slot { clients: self.clone(), key })
    }
}

/// One admitted connection of a client; gives its place back when dropped.
struct Slot {
    clients: Arc<Clients>,
    key: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.clients.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// What the connection learnt at `connection_init`.
#[derive(Default)]
struct Session {
    /// Why the init was refused: the close code and reason.
    refused: Option<(u16, String)>,
    viewer: Option<Viewer>,
    /// The token's `exp`.
    expires: Option<f64>,
    slot: Option<Slot>,
}

type Shared = Arc<Mutex<Session>>;

fn lock(session: &Shared) -> std::sync::MutexGuard<'_, Session> {
    session.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `GET /graphql` with a WebSocket upgrade.
pub(super) async fn upgrade(
    state: AppState,
    ws: WebSocketUpgrade,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    conn: Option<Connection>,
) -> HttpResponse {
    // A token in the header is checked now; the socket is closed with the
    // protocol's code when it fails, as one in the payload would be.
    let from_header = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => Some(match bearer(v.to_str().ok()) {
            Ok(token) => authenticate_token(&state, token).await,
            Err(refusal) => Err(refusal),
        }),
    };
    let held = conn.map(|c| c.upgrade());
    // Small socket buffers: a subscriber receives short event messages and
    // sends shorter ones, and tungstenite's defaults (128 KiB each way) made
    // a thousand idle subscribers cost about 150 MiB.
    let ws = ws
        .protocols([PROTOCOL])
        .max_message_size(state.http.max_body_bytes)
        .max_frame_size(state.http.max_body_bytes)
        .read_buffer_size(SOCKET_READ_BUFFER)
        .write_buffer_size(SOCKET_WRITE_BUFFER)
        .max_write_buffer_size(SOCKET_WRITE_BUFFER + state.limits.max_response_bytes);
    let spoken = ws.selected_protocol().is_some();
    // The socket's work stays in the upgrade request's span (and trace),
    // which so lasts as long as the socket.
    let span = tracing::Span::current();
    ws.on_upgrade(move |socket| {
        let session = async move {
            let _held = &held;
            let closing = async {
                match &held {
                    Some(h) => h.closing().await,
                    None => std::future::pending().await,
                }
            };
            serve(socket, state, from_header, peer, spoken, closing).await;
        };
        tracing::Instrument::instrument(session, span)
    })
}

fn refusal_close(refusal: &Refusal) -> (u16, String) {
    match refusal {
        Refusal::Unauthenticated(err) => (close::UNAUTHORIZED, format!("Unauthorized: {err}")),
        Refusal::Internal => (close::INTERNAL, "internal error".to_owned()),
        Refusal::Late => (close::TRY_AGAIN_LATER, "the token could not be checked in time".into()),
    }
}

async fn serve(
    socket: WebSocket,
    state: AppState,
    from_header: Option<Result<(Viewer, Option<f64>), Refusal>>,
    peer: Option<IpAddr>,
    spoken: bool,
    closing: impl Future<Output = ()>,
) {
    let (mut sink, source) = socket.split();
    if !spoken {
        return send_close(&mut sink, close::SUBPROTOCOL, "Subprotocol not acceptable").await;
    }
    let from_header = match from_header {
        None => None,
        Some(Ok(auth)) => Some(auth),
        Some(Err(refusal)) => {
            let (code, reason) = refusal_close(&refusal);
            return send_close(&mut sink, code, &reason).await;
        }
    };
    let session: Shared = Arc::default();
    let operations = Operations {
        state: state.clone(),
        session: session.clone(),
        live: Arc::new(AtomicU32::new(0)),
    };
    let input = source
        .take_while(|m| std::future::ready(matches!(m, Ok(m) if !matches!(m, Message::Close(_)))))
        .filter_map(|m| {
            std::future::ready(match m {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => Some(m.into_data()),
                _ => None,
            })
        });
    let init = {
        let (state, session) = (state.clone(), session.clone());
        move |payload: serde_json::Value| init(state, session, payload, from_header, peer)
    };
    let mut gql =
        GqlWebSocket::new(operations, input, Protocols::GraphQLWS).on_connection_init(init);
    let mut closing = pin!(closing);
    let init_deadline = tokio::time::sleep(state.http.subscription_init_timeout);
    let mut init_deadline = pin!(init_deadline);
    let expiry = tokio::time::sleep(Duration::from_secs(3600 * 24 * 365));
    let mut expiry = pin!(expiry);
    let mut connected: Option<Connected> = None;
    let send_timeout = state.http.subscription_send_timeout;
    loop {
        tokio::select! {
            biased;
            () = &mut closing => {
                return send_close(&mut sink, close::GOING_AWAY, "the server is shutting down").await;
            }
            () = &mut init_deadline, if connected.is_none() => {
                return send_close(&mut sink, close::INIT_TIMEOUT, "Connection initialisation timeout").await;
            }
            () = &mut expiry, if connected.is_some() => {
                return send_close(&mut sink, close::UNAUTHORIZED, "Unauthorized: the token has expired").await;
            }
            message = gql.next() => match message {
                None => return,
                Some(WsMessage::Text(text)) => {
                    if connected.is_none() && text == ACK {
                        connected = Some(Connected::new(&state.metrics));
                        let expires = lock(&session).expires;
                        if let Some(exp) = expires {
                            let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
                            let left = Duration::from_secs_f64((exp - now).max(0.0));
                            expiry.as_mut().reset((Instant::now() + left).into());
                        }
                    }
                    match tokio::time::timeout(send_timeout, sink.send(Message::Text(text.into()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        Err(_) => {
                            state.metrics.subscribers_dropped.inc();
                            tracing::warn!("a subscriber took no message in time; dropped");
                            return;
                        }
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    let refused = lock(&session).refused.take();
                    let (code, reason) = match (code, refused) {
                        // async-graphql closes a refused init with 1002.
                        (1002, Some(refused)) => refused,
                        // A subscribe before the init was acknowledged.
                        (1011, _) => (close::UNAUTHORIZED, "Unauthorized".to_owned()),
                        // A message that is not of the protocol.
                        (1002, None) => (close::BAD_REQUEST, reason),
                        (code, _) => (code, reason),
                    };
                    return send_close(&mut sink, code, &reason).await;
                }
            },
        }
    }
}

/// Counts a connected (acknowledged) subscriber while it lives.
struct Connected(Arc<Metrics>);

impl Connected {
    fn new(metrics: &Arc<Metrics>) -> Self {
        metrics.subscriber_connections.inc();
        Self(metrics.clone())
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.subscriber_connections.dec();
    }
}

/// `connection_init`: who is connecting, and whether the client may open
/// one more connection.
async fn init(
    state: AppState,
    session: Shared,
    payload: serde_json::Value,
    from_header: Option<(Viewer, Option<f64>)>,
    peer: Option<IpAddr>,
) -> async_graphql::Result<Data> {
    let refuse = |code: u16, reason: String| {
        let message = reason.clone();
        lock(&session).refused = Some((code, reason));
        Err(async_graphql::Error::new(message))
    };
    let given = ["Authorization", "authorization"]
        .iter()
        .find_map(|k| payload.get(*k))
        .map(|v| v.as_str().map(str::to_owned));
    let (viewer, expires) = match (given, from_header) {
        (Some(Some(value)), _) => {
            let deadline = Instant::now() + state.limits.prepare_timeout;
            let checked = match bearer(Some(&value)) {
                Ok(token) => {
                    tokio::time::timeout_at(deadline.into(), authenticate_token(&state, token))
                        .await
                        .unwrap_or(Err(Refusal::Late))
                }
                Err(refusal) => Err(refusal),
            };
            match checked {
                Ok(auth) => auth,
                Err(refusal) => {
                    let (code, reason) = refusal_close(&refusal);
                    return refuse(code, reason);
                }
            }
        }
        (Some(None), _) => {
            return refuse(
                close::UNAUTHORIZED,
                "Unauthorized: Authorization is not a string".into(),
            );
        }
        (None, Some(auth)) => auth,
        (None, None) => {
            return refuse(
                close::UNAUTHORIZED,
                "Unauthorized: send {\"Authorization\": \"Bearer <token>\"} in connection_init"
                    .into(),
            );
        }
    };
    let (kind, key) = rate_key(&viewer, peer);
    if matches!(viewer, Viewer::Anonymous) {
        return refuse(close::UNAUTHORIZED, "Unauthorized: a token is required".into());
    }
    if state.rate_limits.check(kind, key.clone()).is_err() {
        state.metrics.rate_limited(kind.as_str());
        return refuse(close::TOO_MANY, "Too many requests: retry later".into());
    }
    let Some(slot) = state.subscribers.admit(format!("{}:{key}", kind.as_str())) else {
        return refuse(close::TOO_MANY, "Too many connections for this client".into());
    };
    let mut data = Data::default();
    data.insert(viewer.clone());
    let mut s = lock(&session);
    s.viewer = Some(viewer);
    s.expires = expires;
    s.slot = Some(slot);
    Ok(data)
}

/// Runs the operations of one connection: subscriptions only, each held to
/// the limits of a request.
#[derive(Clone)]
struct Operations {
    state: AppState,
    session: Shared,
    /// Subscriptions live on this connection.
    live: Arc<AtomicU32>,
}

/// One live subscription, counted on its connection and in metrics.
struct Live {
    live: Arc<AtomicU32>,
    metrics: Arc<Metrics>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
        self.metrics.subscriptions.dec();
    }
}

impl Operations {
    /// The request, ready to run, or why it may not.
    fn prepare(
        &self,
        mut req: async_graphql::Request,
    ) -> Result<async_graphql::Request, ServerError> {
        let state = &self.state;
        let most = state.http.subscriptions_per_connection;
        let now = self.live.load(Ordering::SeqCst);
        if now >= most {
            return Err(cost::refusal(
                format!("this connection has {now} subscriptions; at most {most} are accepted"),
                "subscriptionsPerConnection",
                Some((now as usize + 1, most as usize)),
            ));
        }
        let deadline = Instant::now() + state.limits.prepare_timeout;
        state.trusted.resolve(&mut req).map_err(|refused| refused.error())?;
        let doc = super::check_document(state, &req)?;
        if let Some(doc) = &doc {
            match selected_operation(doc, req.operation_name.as_deref()) {
                Some((_, op)) if op.ty == OperationType::Subscription => {}
                Some(_) => {
                    return Err(cost::refusal(
                        "only subscriptions run over WebSocket; send queries and mutations \
                         with POST"
                            .to_owned(),
                        "operationType",
                        None,
                    ));
                }
                None => {}
            }
        }
        let Some(viewer) = lock(&self.session).viewer.clone() else {
            return Err(ServerError::new("the connection is not initialised", None));
        };
        let (kind, key) = rate_key(&viewer, None);
        if let Err((wait, _)) = state.rate_limits.check(kind, key.clone()) {
            state.metrics.rate_limited(kind.as_str());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut err =
                ServerError::new(format!("too many requests; retry after {} s", secs.max(1)), None);
            let ext = err.extensions.get_or_insert_with(ErrorExtensionValues::default);
            ext.set("code", code::RATE_LIMITED);
            ext.set("retryAfter", secs.max(1));
            return Err(err);
        }
        let charge = state.rate_limits.has_cost_limit().then(|| {
            let limits = state.rate_limits.clone();
            let key = format!("{}:{key}", kind.as_str());
            Arc::new(move |cost: usize| limits.charge(&key, cost)) as Arc<cost::Charge>
        });
        if let Some(doc) = doc {
            req.set_parsed_query(doc);
        }
        let budget = cost::Budget { max_cost: state.limits.max_cost, deadline, charge };
        Ok(req.data(budget).data(RequestId(None)))
    }
}

impl Executor for Operations {
    async fn execute(&self, _: async_graphql::Request) -> Response {
        Response::from_errors(vec![cost::refusal(
            "only subscriptions run over WebSocket".to_owned(),
            "operationType",
            None,
        )])
    }

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let req = match self.prepare(request) {
            Ok(req) => req,
            Err(err) => {
                return futures_util::stream::once(std::future::ready(Response::from_errors(
                    vec![err],
                )))
                .boxed();
            }
        };
        self.live.fetch_add(1, Ordering::SeqCst);
        self.state.metrics.subscriptions.inc();
        let live = Live { live: self.live.clone(), metrics: self.state.metrics.clone() };
        self.state
            .schema
            .execute_stream_with_session_data(req, session_data.unwrap_or_default())
            .map(move |mut resp| {
                let _ = &live;
                for err in &mut resp.errors {
                    // Parse and validation errors (async-graphql's own)
                    // come with no code: the caller's request is at fault.
                    let coded = err.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
                    if !coded && err.path.is_empty() {
                        super::set_code(err, code::BAD_USER_INPUT);
                    }
                }
                resp
            })
            .boxed()
    }
}

/// Closes the socket with `code` and `reason` (cut to what a close frame
/// holds), waiting briefly.
async fn send_close(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    code: u16,
    reason: &str,
) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame { code, reason: reason[..end].into() };
    let _ =
        tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(Some(frame)))).await;
}
