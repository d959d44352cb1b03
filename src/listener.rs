//! The accept loop: HTTP/1.1 connections served by hyper with the limits
//! that `axum::serve` lacks, so that a client opening thousands of
//! connections and sending half a header cannot take every file descriptor.
//!
//! - A request header must be complete within the header-read timeout
//!   (hyper's, which also counts from the end of a response on a kept-alive
//!   connection); a kept-alive connection idle for the keep-alive timeout is
//!   closed; the last of `max_requests_per_connection` requests is answered
//!   with `Connection: close`.
//! - At most `max_connections` connections are open (lowered at start to
//!   fit the open-files limit). When full, a new connection is admitted by
//!   closing the oldest one that is not executing a request (one waiting
//!   for its header or still receiving its body, or idle between
//!   requests): so `/healthz` still
//!   answers. A connection executing a request is never shed; when every
//!   one is, the new connection is closed at once. Both are counted in
//!   `/metrics`, and the first of an episode at the cap is logged (a WARN),
//!   as is its end.
//! - On shutdown the listener is dropped (new connections are refused),
//!   idle connections are closed and busy ones finish their request.
//! - A connection upgraded to another protocol (a WebSocket for GraphQL
//!   subscriptions) stays counted against `max_connections` until the
//!   upgraded socket is closed, and is busy for as long, so it is never
//!   shed as idle: its handler holds an [`Upgraded`] guard, taken from the
//!   request's [`Connection`]; on shutdown the guard's `closing` resolves.
//!
//! The caller's address reaches handlers as `ConnectInfo<SocketAddr>`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::config::HttpArgs;
use crate::metrics::ConnectionMetrics;

/// File descriptors kept for everything but client connections (database
/// pool, the listener, files, the JWKS client).
const RESERVED_FILES: u64 = 128;

/// Connections admitted even under a very low open-files limit.
const MIN_CONNECTIONS: u64 = 16;

/// The limits of the accept loop (from [`HttpArgs`]).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Time to send a complete request header.
    pub header_read_timeout: Duration,
    /// Idle time allowed between requests; zero turns keep-alive off.
    pub keep_alive_timeout: Duration,
    /// Requests served on one connection.
    pub max_requests_per_connection: u32,
    /// Connections open at once.
    pub max_connections: u32,
}

impl From<&HttpArgs> for Settings {
    fn from(args: &HttpArgs) -> Self {
        Self {
            header_read_timeout: args.header_read_timeout,
            keep_alive_timeout: args.keep_alive_timeout,
            max_requests_per_connection: args.max_requests_per_connection,
            max_connections: args.max_connections,
        }
    }
}

/// Raises the soft limit on open files to the hard one (a no-op where it
/// cannot); returns the soft limit now in force, if known.
pub fn raise_open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
            && current < maximum
        {
            let raised = Rlimit { current: Some(maximum), maximum: Some(maximum) };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                return Some(maximum);
            }
        }
        limit.current
    }
    #[cfg(not(unix))]
    None
}

fn open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    None
}

/// The connection cap that fits `open_files` (the soft limit), leaving
/// [`RESERVED_FILES`] for the rest of the process.
pub fn fit_to_open_files(max_connections: u32, open_files: Option<u64>) -> u32 {
    let Some(files) = open_files else { return max_connections };
    let room = files.saturating_sub(RESERVED_FILES).max(MIN_CONNECTIONS);
    u32::try_from(room).map_or(max_connections, |room| max_connections.min(room))
}

/// Serves `router` on `listener` until `shutdown` completes; then refuses
/// new connections and returns once the open ones are done.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: Settings,
    metrics: ConnectionMetrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let cap = fit_to_open_files(settings.max_connections, open_files_limit());
    if cap < settings.max_connections {
        tracing::warn!(
            max_connections = settings.max_connections,
            open_files = open_files_limit(),
            lowered_to = cap,
            "MAX_CONNECTIONS does not fit the open-files limit; lowered"
        );
    }
    tracing::info!(
        addr = ?listener.local_addr().ok(),
        max_connections = cap,
        header_read_timeout = ?settings.header_read_timeout,
        keep_alive_timeout = ?settings.keep_alive_timeout,
        "accepting connections"
    );
    let conns = Arc::new(Conns::new(cap, metrics.clone()));
    let settings = Arc::new(settings);
    let mut tasks = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(&err, &conns).await;
                    continue;
                }
            },
        };
        metrics.accepted.inc();
        let Some(conn) = conns.admit() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        tasks.spawn(run(stream, peer, conn, conns.clone(), router.clone(), settings.clone()));
        // A shed connection holds its descriptor until its task has run:
        // wait for that before accepting more, or a flood of connections
        // would outrun the closing of the old ones.
        conns.room().await;
    }
    drop(listener);
    conns.close_all();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// `accept` failed: a connection that went away is nothing; anything else
/// (most often the open-files limit) is logged, an idle connection is shed
/// to free a descriptor, and the loop pauses briefly.
async fn accept_failed(err: &io::Error, conns: &Conns) {
    if matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accepting a connection failed");
    conns.shed_oldest_idle();
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// One connection, as the accept loop and the connection's task share it.
#[derive(Debug, Default)]
struct ConnState {
    /// Requests executing now (their responses not yet written).
    busy: AtomicU32,
    /// Requests received on the connection.
    served: AtomicU32,
    /// Close: shed at the cap, or shut down.
    close: Notify,
    /// `busy` fell to zero: the idle clock starts.
    idle: Notify,
    /// Set on shutdown, for upgraded connections.
    shutting_down: std::sync::atomic::AtomicBool,
    /// Woken (all waiters) on shutdown.
    shutdown: Notify,
}

/// The connection a request came on (in the request's extensions).
#[derive(Clone)]
pub struct Connection {
    state: Arc<ConnState>,
    /// Weak: a request must not keep its connection counted; only an
    /// [`Upgraded`] guard does.
    slot: std::sync::Weak<Slot>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    /// Keeps the connection counted and busy while an upgraded protocol
    /// runs on it.
    pub fn upgrade(&self) -> Upgraded {
        Upgraded {
            _busy: Busy::new(&self.state),
            _slot: self.slot.upgrade(),
            state: self.state.clone(),
        }
    }
}

/// A connection's place among the open ones: it is given up (the
/// connection no longer counted) when the last holder drops it, the
/// connection's task or an [`Upgraded`] guard, whichever ends later.
///
/// Nothing waits for an upgraded socket to close: the task ends, and with
/// it hyper's connection, including any request still in flight on it, at
/// once. (Waiting for the connection to go idle once kept hyper's
/// connection, and the requests in it, alive, so a client closing a
/// socket with a request under way froze that request, holding its
/// database connection, for good.)
struct Slot {
    id: u64,
    conns: Arc<Conns>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.conns.remove(self.id);
    }
}

/// A connection taken over by an upgraded protocol: counted against
/// `max_connections` and never shed while this lives.
pub struct Upgraded {
    _busy: Busy,
    _slot: Option<Arc<Slot>>,
    state: Arc<ConnState>,
}

impl Upgraded {
    /// Completes when the server shuts down: close the socket.
    pub async fn closing(&self) {
        let notified = self.state.shutdown.notified();
        let mut notified = pin!(notified);
        notified.as_mut().enable();
        if self.state.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }
}

/// Marks a connection busy while it lives (from the end of the request's
/// body to the end of its response body).
struct Busy(Arc<ConnState>);

impl Busy {
    fn new(conn: &Arc<ConnState>) -> Self {
        conn.busy.fetch_add(1, Ordering::SeqCst);
        Self(conn.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_one();
        }
    }
}

/// A request body that marks its connection busy once all of it has
/// arrived (at once when there is none). Until then the connection can be
/// shed like one still sending its header: a client trickling bodies holds
/// no more than one trickling headers.
struct Arriving {
    inner: Incoming,
    /// The connection, until it is marked.
    conn: Option<Arc<ConnState>>,
    /// Where the mark is kept, shared with the response.
    mark: Arc<Mutex<Option<Busy>>>,
}

impl Arriving {
    fn new(inner: Incoming, conn: &Arc<ConnState>, mark: &Arc<Mutex<Option<Busy>>>) -> Self {
        let mut body = Self { inner, conn: Some(conn.clone()), mark: mark.clone() };
        if hyper::body::Body::is_end_stream(&body.inner) {
            body.arrived();
        }
        body
    }

    fn arrived(&mut self) {
        if let Some(conn) = self.conn.take() {
            *self.mark.lock().unwrap_or_else(PoisonError::into_inner) = Some(Busy::new(&conn));
        }
    }
}

impl hyper::body::Body for Arriving {
    type Data = hyper::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None))
            || hyper::body::Body::is_end_stream(&this.inner)
        {
            this.arrived();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::Body::size_hint(&self.inner)
    }
}

/// The open connections, oldest first.
struct Conns {
    cap: usize,
    metrics: ConnectionMetrics,
    inner: Mutex<Inner>,
    /// A connection's task has ended.
    ended: Notify,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    /// Connections whose task has not ended (their sockets are open).
    live: usize,
    /// The live connections that may still be shed, oldest first.
    open: BTreeMap<u64, Arc<ConnState>>,
    /// Set while at the cap: what was shed or refused in this episode.
    full: Option<(u64, u64)>,
}

/// A connection admitted by [`Conns::admit`].
struct Admitted {
    id: u64,
    state: Arc<ConnState>,
}

impl Conns {
    fn new(cap: u32, metrics: ConnectionMetrics) -> Self {
        Self { cap: cap as usize, metrics, inner: Mutex::default(), ended: Notify::new() }
    }

    /// Waits (briefly) until at most `cap` connections are live: a shed
    /// one that turned busy meanwhile finishes its request first, so the
    /// wait is bounded rather than the count exact.
    async fn room(&self) {
        for _ in 0..10 {
            let ended = self.ended.notified();
            if self.lock().live <= self.cap {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(10), ended).await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a new connection, shedding the oldest idle one at the cap;
    /// `None` when every open connection is executing a request.
    fn admit(&self) -> Option<Admitted> {
        let mut inner = self.lock();
        if inner.live >= self.cap {
            if inner.full.is_none() {
                tracing::warn!(
                    max_connections = self.cap,
                    "connection cap reached: closing the oldest idle connections to admit new ones"
                );
                inner.full = Some((0, 0));
            }
            let shed = Self::shed_locked(&mut inner);
            let c = &self.metrics;
            let episode = inner.full.get_or_insert((0, 0));
            if shed {
                episode.0 += 1;
                c.shed.inc();
            } else {
                episode.1 += 1;
                c.refused.inc();
                return None;
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let state = Arc::new(ConnState::default());
        inner.open.insert(id, state.clone());
        inner.live += 1;
        self.metrics.open.inc();
        Some(Admitted { id, state })
    }

    /// Tells the oldest connection not executing a request to close, and
    /// forgets it; false when there is none.
    fn shed_locked(inner: &mut Inner) -> bool {
        let victim =
            inner.open.iter().find(|(_, c)| c.busy.load(Ordering::SeqCst) == 0).map(|(id, _)| *id);
        match victim.and_then(|id| inner.open.remove(&id)) {
            Some(conn) => {
                conn.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn shed_oldest_idle(&self) {
        if Self::shed_locked(&mut self.lock()) {
            self.metrics.shed.inc();
        }
    }

    /// A connection's task has ended.
    fn remove(&self, id: u64) {
        self.metrics.open.dec();
        let mut inner = self.lock();
        inner.open.remove(&id);
        inner.live -= 1;
        self.ended.notify_one();
        // The episode ends well under the cap, so that a server hovering
        // at it does not log on every connection.
        if inner.live <= self.cap * 3 / 4
            && let Some((shed, refused)) = inner.full.take()
        {
            tracing::info!(
                connections.shed = shed,
                connections.refused = refused,
                "connections back under the cap"
            );
        }
    }

    /// Shutdown: every connection closes (a busy one after its request).
    fn close_all(&self) {
        for conn in self.lock().open.values() {
            conn.shutting_down.store(true, Ordering::SeqCst);
            conn.shutdown.notify_waiters();
            conn.close.notify_one();
        }
    }
}

/// Serves one connection until it ends, is shed, times out idle, or is
/// shut down.
async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    conn: Admitted,
    conns: Arc<Conns>,
    router: Router,
    settings: Arc<Settings>,
) {
    let Admitted { id, state } = conn;
    let slot = Arc::new(Slot { id, conns });
    let extension = Connection { state: state.clone(), slot: Arc::downgrade(&slot) };
    let keep_alive = !settings.keep_alive_timeout.is_zero();
    let max_requests = settings.max_requests_per_connection;
    let service = {
        let state = state.clone();
        hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let mark = Arc::new(Mutex::new(None));
            let last = state.served.fetch_add(1, Ordering::SeqCst) + 1 >= max_requests;
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(extension.clone());
            let router = router.clone();
            let req = req.map(|body| Body::new(Arriving::new(body, &state, &mark)));
            async move {
                let Ok(mut res) = router.oneshot(req).await;
                if last {
                    res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                // The connection stays busy until its response is written.
                Ok::<_, Infallible>(res.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _ = &mark;
                        frame
                    }))
                }))
            }
        })
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .keep_alive(keep_alive);
    // In a block: hyper's connection, with any request still in flight on
    // it, is dropped when the block ends.
    {
        let mut connection =
            pin!(http.serve_connection(TokioIo::new(stream), service).with_upgrades());
        let mut idle_deadline = pin!(tokio::time::sleep(Duration::ZERO));
        let (mut idle_armed, mut closing) = (false, false);
        loop {
            tokio::select! {
                biased;
                res = connection.as_mut() => {
                    if let Err(err) = res {
                        tracing::debug!(error = %err, "connection ended with an error");
                    }
                    break;
                }
                () = state.close.notified(), if !closing => {
                    // Nothing in progress is lost by closing now; a request
                    // under way is finished first.
                    if state.busy.load(Ordering::SeqCst) == 0 {
                        break;
                    }
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = state.idle.notified(), if keep_alive => {
                    if state.busy.load(Ordering::SeqCst) == 0 {
                        idle_deadline.as_mut().reset(Instant::now() + settings.keep_alive_timeout);
                        idle_armed = true;
                    }
                }
                () = idle_deadline.as_mut(), if idle_armed => {
                    idle_armed = false;
                    // hyper lets a response go (and with it the connection's
                    // busy mark) once its last bytes are queued, not written:
                    // a graceful shutdown writes them out, then closes.
                    if state.busy.load(Ordering::SeqCst) == 0 && !closing {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
        }
    }
    // The slot goes too, unless an upgraded socket holds it.
    drop(slot);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(max_connections: u32, open_files: Option<u64>, expected: u32) {
        assert_eq!(fit_to_open_files(max_connections, open_files), expected);
    }

    #[test]
    fn the_cap_fits_the_open_files_limit() {
        // unknown limit: the setting
        check(1024, None, 1024);
        // plenty of room: the setting
        check(1024, Some(1_048_576), 1024);
        // the common soft limit of 1024: room for the reserve
        check(1024, Some(1024), 896);
        // a tiny limit still admits a few
        check(1024, Some(100), 16);
        // a small setting stays
        check(8, Some(100), 8);
    }
}
