//! `GET /metrics`: where it is served and to whom.
//!
//! - On the API's listener it is 404, exactly as a route that does not
//!   exist, unless `METRICS_TOKEN` is set (then it answers to that bearer
//!   token alone: 401 without it or with another) or the server runs in
//!   demo mode without a token (then it is open, so that `serve --demo`
//!   shows its metrics at once). A production server never shows its
//!   metrics to the public port by default.
//! - The metrics listener (`METRICS_LISTEN_ADDR`, none by default) serves
//!   `/metrics`, `/healthz` and `/readyz` to whoever reaches it, for a
//!   scraper on a private network; it has the accept loop's limits with a
//!   small connection cap, logs no request (scrapes come every few seconds)
//!   and stops with the server.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest as _, Sha256};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use super::AppState;
use crate::config::MetricsArgs;
use crate::metrics::Sampled;

/// Connections the metrics listener keeps open at once (a scraper or two,
/// and an operator's curl).
pub const MAX_CONNECTIONS: u32 = 16;

/// The shortest `METRICS_TOKEN` accepted.
const MIN_TOKEN_LEN: usize = 32;

/// Who may read `/metrics` on the API's listener.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicMetrics {
    /// Nobody: 404 (the default outside demo mode).
    Hidden,
    /// Anybody (demo mode without `METRICS_TOKEN`).
    Open,
    /// Callers with this bearer token, kept as its SHA-256.
    Token([u8; 32]),
}

impl std::fmt::Debug for PublicMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PublicMetrics::Hidden => "Hidden",
            PublicMetrics::Open => "Open",
            PublicMetrics::Token(_) => "Token(…)",
        })
    }
}

impl PublicMetrics {
    /// The rule the settings give; a token too short, or one that no
    /// header could carry, is refused at start.
    pub fn from_settings(args: &MetricsArgs, demo: bool) -> anyhow::Result<Self> {
        Ok(match args.metrics_token.as_deref() {
            Some(token) => {
                anyhow::ensure!(
                    token.len() >= MIN_TOKEN_LEN,
                    "METRICS_TOKEN must be at least {MIN_TOKEN_LEN} characters"
                );
                anyhow::ensure!(
                    token.bytes().all(|b| b.is_ascii_graphic()),
                    "METRICS_TOKEN must be printable ASCII without spaces"
                );
                PublicMetrics::Token(Sha256::digest(token).into())
            }
            None if demo => PublicMetrics::Open,
            None => PublicMetrics::Hidden,
        })
    }

    /// `None` when the request may read the metrics; the refusal otherwise.
    fn refusal(&self, headers: &HeaderMap) -> Option<Response> {
        let expected = match self {
            PublicMetrics::Open => return None,
            PublicMetrics::Hidden => return Some(StatusCode::NOT_FOUND.into_response()),
            PublicMetrics::Token(digest) => digest,
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        // Digests are compared, not the tokens: how long a comparison of
        // two SHA-256 values takes tells nothing of the token.
        let challenge = match presented {
            Some(token) if Sha256::digest(token)[..] == expected[..] => return None,
            Some(_) => r#"Bearer realm="metrics", error="invalid_token""#,
            None => r#"Bearer realm="metrics""#,
        };
        Some(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge))],
                "GET /metrics needs the bearer token of METRICS_TOKEN\n",
            )
                .into_response(),
        )
    }
}

/// `GET /metrics` on the API's listener, as [`PublicMetrics`] rules.
pub(super) async fn public(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.public_metrics.refusal(&headers) {
        Some(refused) => refused,
        None => scrape(&state).await,
    }
}

/// `GET /metrics` on the metrics listener: no check.
async fn admin(State(state): State<AppState>) -> Response {
    scrape(&state).await
}

/// The metrics now, with what is read at scrape time.
async fn scrape(state: &AppState) -> Response {
    let outbox = match crate::service::webhooks::outbox::backlog(&state.db).await {
        Ok(backlog) => Some(backlog),
        Err(err) => {
            tracing::warn!(error = %err, "reading the webhook outbox for /metrics failed");
            None
        }
    };
    let sampled = Sampled::read(&state.db, state.hub.listens(), outbox);
    let body = state.metrics.encode(sampled);
    ([(header::CONTENT_TYPE, HeaderValue::from_static(crate::metrics::CONTENT_TYPE))], body)
        .into_response()
}

/// The metrics listener's routes: `/metrics`, `/healthz`, `/readyz`.
pub fn admin_router(state: AppState) -> Router {
    let layers = ServiceBuilder::new().layer(CatchPanicLayer::new()).layer(
        TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.http.request_timeout),
    );
    Router::new()
        .route("/metrics", get(admin))
        .route("/healthz", get(super::healthz))
        .route("/readyz", get(super::readyz))
        .with_state(state)
        .layer(layers)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(token: Option<&str>) -> MetricsArgs {
        MetricsArgs { metrics_listen_addr: None, metrics_token: token.map(str::to_owned) }
    }

    #[test]
    fn the_settings_decide_who_reads_the_public_metrics() {
        assert_eq!(
            PublicMetrics::from_settings(&args(None), false).unwrap(),
            PublicMetrics::Hidden
        );
        assert_eq!(PublicMetrics::from_settings(&args(None), true).unwrap(), PublicMetrics::Open);
        let token = "t".repeat(MIN_TOKEN_LEN);
        for demo in [false, true] {
            let rule = PublicMetrics::from_settings(&args(Some(&token)), demo).unwrap();
            assert!(matches!(rule, PublicMetrics::Token(_)), "a token wins over demo mode");
            assert_eq!(format!("{rule:?}"), "Token(…)", "the digest is not shown either");
        }
        let short = "t".repeat(MIN_TOKEN_LEN - 1);
        assert!(PublicMetrics::from_settings(&args(Some(&short)), false).is_err());
        let spaced = format!("{} x", "t".repeat(MIN_TOKEN_LEN));
        assert!(PublicMetrics::from_settings(&args(Some(&spaced)), false).is_err());
    }
}
