//! The delivery worker: one in every `serve` process, started with the
//! server and stopped with it.
//!
//! Work is claimed per endpoint, through the database: a claim sets the
//! endpoint's lease (`lease_owner`, `lease_until_ms`) in one statement
//! that, on PostgreSQL, picks endpoints with `FOR UPDATE SKIP LOCKED`, so
//! that two instances never claim the same endpoint and never wait for
//! each other. The holder sends the endpoint's due deliveries one at a
//! time, oldest event first, renewing the lease before any send that what
//! is left of it might not cover, and lets go when none is due. Hence one attempt per delivery in flight
//! across all instances, and deliveries of one endpoint leave in event
//! order; a failed one is retried later, after the ones behind it. A
//! crashed or killed instance's lease runs out (twice `WEBHOOK_TIMEOUT`
//! plus 5 s: longer than any attempt) and another instance takes the
//! endpoint over, so no delivery is lost:
//! at least once, as an attempt whose answer was lost is sent again.
//! SQLite has one process; the same statement, without the lock clause,
//! serialises on its write lock.
//!
//! A job-queue crate was considered first: apalis' SQL backends sit on
//! `sqlx` 0.8 while sea-orm 2 brings `sqlx` 0.9, so it would add a second
//! database stack and pool, and it could not write its job in the
//! transaction of our event (the outbox's point). Nor does a generic job
//! queue know about per-endpoint order. The claim loop is short.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use entity::{webhook_attempt, webhook_delivery, webhook_endpoint};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use tokio::sync::watch;

use super::{DeliveryState, millis};
use crate::config::WebhookArgs;
use crate::domain::webhook::{self as rules, Secret};
use crate::metrics::Metrics;
use crate::service::ServiceError;

/// Endpoints one process claims at a time.
const CLAIM_BATCH: i64 = 8;

/// Due deliveries of one endpoint read at a time.
const DRAIN_BATCH: u64 = 16;

/// The longest error text kept with an attempt.
const MAX_ERROR: usize = 500;

/// What every task of the worker shares.
struct Worker {
    db: DatabaseConnection,
    settings: Arc<WebhookArgs>,
    metrics: Arc<Metrics>,
    client: reqwest::Client,
    me: uuid::Uuid,
    stop: watch::Receiver<bool>,
}

/// Runs the worker until `stop` turns true (or its sender is dropped).
pub async fn run(
    db: DatabaseConnection,
    settings: Arc<WebhookArgs>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let client = match super::client::build(
        settings.webhook_timeout,
        settings.webhook_allow_private_addresses,
    ) {
        Ok(c) => c,
        Err(err) => {
            tracing::error!(error = %err, "cannot build the webhook client; no deliveries");
            return;
        }
    };
    let mut wake = super::outbox::subscribe();
    let worker = Arc::new(Worker {
        db,
        settings: settings.clone(),
        metrics,
        client,
        me: uuid::Uuid::now_v7(),
        stop: stop.clone(),
    });
    tracing::debug!(worker = %worker.me, "webhook worker started");
    loop {
        if *stop.borrow() {
            break;
        }
        wake.mark_unchanged();
        let claimed = match worker.claim().await {
            Ok(c) => c,
            Err(err) => {
                tracing::warn!(error = %err, "claiming webhook deliveries failed");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                r = stop.changed() => if r.is_err() { break },
                _ = wake.changed() => {},
                () = tokio::time::sleep(settings.webhook_poll_interval) => {},
            }
            continue;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for endpoint in claimed {
            let w = worker.clone();
            tasks.spawn(crate::db::in_background(async move {
                if let Err(err) = w.drain(endpoint).await {
                    tracing::warn!(webhook.endpoint = %endpoint, error = %err, "webhook deliveries interrupted");
                }
            }));
        }
        while tasks.join_next().await.is_some() {}
    }
    if let Err(err) = worker.release_all().await {
        tracing::warn!(error = %err, "releasing webhook leases failed");
    }
    tracing::debug!(worker = %worker.me, "webhook worker stopped");
}

/// `sql` with `$n` placeholders as the backend wants them.
fn statement(backend: DatabaseBackend, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    let sql =
        if backend == DatabaseBackend::Sqlite { sql.replace('$', "?") } else { sql.to_owned() };
    Statement::from_sql_and_values(backend, sql, values)
}

impl Worker {
    fn lease(&self) -> i64 {
        i64::try_from((2 * self.settings.webhook_timeout + Duration::from_secs(5)).as_millis())
            .unwrap_or(i64::MAX / 2)
    }

    /// Claims up to [`CLAIM_BATCH`] endpoints with due deliveries whose
    /// lease is free or has run out.
    async fn claim(&self) -> Result<Vec<uuid::Uuid>, ServiceError> {
        let backend = self.db.get_database_backend();
        let lock = if backend == DatabaseBackend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "UPDATE webhook_endpoint SET lease_owner = $1, lease_until_ms = $2 \
             WHERE id IN (SELECT e.id FROM webhook_endpoint e \
               WHERE (e.lease_until_ms IS NULL OR e.lease_until_ms < $3) \
               AND EXISTS (SELECT 1 FROM webhook_delivery d WHERE d.endpoint_id = e.id \
                 AND d.state = 'pending' AND d.due_at_ms <= $3) \
               ORDER BY e.id LIMIT $4 {lock}) \
             RETURNING id"
        );
        let now = millis(Utc::now());
        let rows = self
            .db
            .query_all_raw(statement(
                backend,
                &sql,
                vec![self.me.into(), (now + self.lease()).into(), now.into(), CLAIM_BATCH.into()],
            ))
            .await?;
        rows.iter().map(|r| r.try_get::<uuid::Uuid>("", "id").map_err(Into::into)).collect()
    }

    /// Renews the lease of `endpoint`; false when it is no longer ours.
    async fn renew(&self, endpoint: uuid::Uuid) -> Result<bool, ServiceError> {
        let res = webhook_endpoint::Entity::update_many()
            .col_expr(
                webhook_endpoint::Column::LeaseUntilMs,
                Expr::value(millis(Utc::now()) + self.lease()),
            )
            .filter(webhook_endpoint::Column::Id.eq(endpoint))
            .filter(webhook_endpoint::Column::LeaseOwner.eq(self.me))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    async fn release(&self, endpoint: Option<uuid::Uuid>) -> Result<(), ServiceError> {
        let mut q = webhook_endpoint::Entity::update_many()
            .col_expr(webhook_endpoint::Column::LeaseOwner, Expr::value(Option::<uuid::Uuid>::None))
            .col_expr(webhook_endpoint::Column::LeaseUntilMs, Expr::value(Option::<i64>::None))
            .filter(webhook_endpoint::Column::LeaseOwner.eq(self.me));
        if let Some(id) = endpoint {
            q = q.filter(webhook_endpoint::Column::Id.eq(id));
        }
        q.exec(&self.db).await?;
        Ok(())
    }

    async fn release_all(&self) -> Result<(), ServiceError> {
        self.release(None).await
    }

    /// Sends the due deliveries of a claimed endpoint, oldest event first,
    /// until none is due, then lets the endpoint go.
    ///
    /// The due deliveries are read [`DRAIN_BATCH`] at a time. The lease is
    /// renewed before a send whenever what is left of it might not cover
    /// the send (the timeout and a second), and the endpoint is read again
    /// with each renewal, so a change to it (disabled, deleted, a new
    /// secret) is seen within one lease.
    async fn drain(&self, endpoint: uuid::Uuid) -> Result<(), ServiceError> {
        let margin =
            i64::try_from((self.settings.webhook_timeout + Duration::from_secs(1)).as_millis())
                .unwrap_or(i64::MAX / 2);
        // Ours until then, and the endpoint as last read.
        let mut held: Option<(i64, webhook_endpoint::Model)> = None;
        loop {
            let now = millis(Utc::now());
            let due = webhook_delivery::Entity::find()
                .filter(webhook_delivery::Column::EndpointId.eq(endpoint))
                .filter(webhook_delivery::Column::State.eq(DeliveryState::Pending.as_str()))
                .filter(webhook_delivery::Column::DueAtMs.lte(now))
                .order_by_asc(webhook_delivery::Column::EventSeq)
                .order_by_asc(webhook_delivery::Column::Seq)
                .limit(DRAIN_BATCH)
                .all(&self.db)
                .await?;
            if due.is_empty() {
                return self.release(Some(endpoint)).await;
            }
            for delivery in due {
                if *self.stop.borrow() {
                    return self.release(Some(endpoint)).await;
                }
                let now = millis(Utc::now());
                if held.as_ref().is_none_or(|(until, _)| now + margin > *until) {
                    if !self.renew(endpoint).await? {
                        return Ok(());
                    }
                    let Some(ep) =
                        webhook_endpoint::Entity::find_by_id(endpoint).one(&self.db).await?
                    else {
                        return Ok(());
                    };
                    held = Some((now + self.lease(), ep));
                }
                let Some((_, ep)) = held.as_mut() else { return Ok(()) };
                if !ep.enabled || ep.deleted_at.is_some() {
                    self.give_up(&delivery).await?;
                    continue;
                }
                let outcome = self.send(ep, &delivery).await;
                if self.record(ep, &delivery, outcome).await?.is_some() {
                    // A failure may have disabled the endpoint: read it
                    // again (with the lease) before the next send.
                    held = None;
                } else {
                    ep.failing_since_ms = None;
                }
            }
        }
    }

    /// A delivery of a disabled or deleted endpoint fails without an attempt.
    async fn give_up(&self, d: &webhook_delivery::Model) -> Result<(), ServiceError> {
        webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::State, Expr::value(DeliveryState::Failed.as_str()))
            .filter(webhook_delivery::Column::Id.eq(d.id))
            .filter(webhook_delivery::Column::State.eq(DeliveryState::Pending.as_str()))
            .exec(&self.db)
            .await?;
        self.metrics.webhook_delivery("failed");
        Ok(())
    }

    /// One attempt: signs and posts the delivery's body.
    async fn send(&self, ep: &webhook_endpoint::Model, d: &webhook_delivery::Model) -> Outcome {
        let started_at = Utc::now();
        let started = Instant::now();
        let result = self.post(ep, d).await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (http_status, error) = match result {
            Ok(status) if status.is_success() => (Some(i32::from(status.as_u16())), None),
            Ok(status) => (Some(i32::from(status.as_u16())), Some(format!("HTTP {status}"))),
            Err(e) => (None, Some(e)),
        };
        Outcome { at: started_at, http_status, latency_ms, error }
    }

    async fn post(
        &self,
        ep: &webhook_endpoint::Model,
        d: &webhook_delivery::Model,
    ) -> Result<reqwest::StatusCode, String> {
        let url =
            url::Url::parse(&ep.url).map_err(|_| "the endpoint URL does not parse".to_owned())?;
        super::client::check_literal(&url, self.settings.webhook_allow_private_addresses)
            .map_err(|r| r.to_string())?;
        let current = Secret::parse(&ep.secret).ok_or("the endpoint's secret does not read")?;
        let now = Utc::now();
        let previous = ep
            .previous_secret
            .as_deref()
            .filter(|_| ep.previous_secret_until_ms.is_some_and(|u| u > millis(now)))
            .and_then(Secret::parse);
        let mut secrets = vec![&current];
        secrets.extend(previous.as_ref());
        let id = d.event_id.to_string();
        let timestamp = now.timestamp();
        let signature = rules::signature_header(&secrets, &id, timestamp, &d.payload);
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(d.payload.clone())
            .send()
            .await
            .map_err(describe)?;
        Ok(response.status())
    }

    /// Stores an attempt and what follows from it, in one transaction:
    /// delivered, due again after the schedule's next wait, or failed; the
    /// endpoint's failing time, and its disabling when it has failed for
    /// `WEBHOOK_DISABLE_AFTER`.
    async fn record(
        &self,
        ep: &webhook_endpoint::Model,
        d: &webhook_delivery::Model,
        o: Outcome,
    ) -> Result<Option<i64>, ServiceError> {
        let ok = o.error.is_none();
        let step = d.step.saturating_add(1);
        let now = Utc::now();
        let (state, due) = if ok {
            (DeliveryState::Delivered, d.due_at_ms)
        } else {
            let jitter = random_unit();
            match rules::next_wait(
                &self.settings.webhook_retry_schedule.0,
                usize::try_from(step).unwrap_or(usize::MAX),
                jitter,
            ) {
                Some(wait) => (
                    DeliveryState::Pending,
                    millis(now) + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2),
                ),
                None => (DeliveryState::Failed, d.due_at_ms),
            }
        };
        let txn = self.db.begin().await?;
        webhook_attempt::Entity::insert(webhook_attempt::ActiveModel {
            delivery_id: Set(d.id),
            at: Set(o.at),
            http_status: Set(o.http_status),
            latency_ms: Set(o.latency_ms),
            error: Set(o.error.clone()),
            ..Default::default()
        })
        .exec_without_returning(&txn)
        .await?;
        let mut update = webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::State, Expr::value(state.as_str()))
            .col_expr(webhook_delivery::Column::Step, Expr::value(step))
            .col_expr(webhook_delivery::Column::DueAtMs, Expr::value(due))
            .filter(webhook_delivery::Column::Id.eq(d.id))
            .filter(webhook_delivery::Column::State.eq(DeliveryState::Pending.as_str()));
        if ok {
            update = update.col_expr(webhook_delivery::Column::DeliveredAt, Expr::value(o.at));
        }
        update.exec(&txn).await?;
        let mut ep_update =
            webhook_endpoint::Entity::update_many().filter(webhook_endpoint::Column::Id.eq(ep.id));
        let mut failing_since = None;
        if ok {
            ep_update = ep_update.col_expr(
                webhook_endpoint::Column::FailingSinceMs,
                Expr::value(Option::<i64>::None),
            );
        } else {
            let since = ep.failing_since_ms.unwrap_or(millis(o.at));
            failing_since = Some(since);
            ep_update =
                ep_update.col_expr(webhook_endpoint::Column::FailingSinceMs, Expr::value(since));
            let limit =
                i64::try_from(self.settings.webhook_disable_after.as_millis()).unwrap_or(i64::MAX);
            if millis(now) - since >= limit {
                let since = super::from_millis(since).map(|s| s.to_rfc3339()).unwrap_or_default();
                let reason = format!(
                    "disabled by the server: every delivery attempt has failed since {since}"
                );
                ep_update = ep_update
                    .col_expr(webhook_endpoint::Column::Enabled, Expr::value(false))
                    .col_expr(webhook_endpoint::Column::DisabledReason, Expr::value(reason));
                tracing::warn!(webhook.endpoint = %ep.id, "webhook endpoint disabled: its deliveries keep failing");
            }
        }
        // A success of an endpoint that was not failing changes nothing of it.
        if !(ok && ep.failing_since_ms.is_none()) {
            ep_update.exec(&txn).await?;
        }
        txn.commit().await?;
        self.metrics.webhook_delivery(match state {
            DeliveryState::Delivered => "delivered",
            DeliveryState::Pending => "retrying",
            DeliveryState::Failed => "failed",
        });
        tracing::debug!(webhook.delivery = %d.id, state = state.as_str(), status = ?o.http_status, "webhook attempt");
        Ok(failing_since)
    }
}

/// One attempt's result.
struct Outcome {
    at: chrono::DateTime<Utc>,
    http_status: Option<i32>,
    latency_ms: i64,
    error: Option<String>,
}

/// A random number in `[0, 1)` for the jitter (0.5 if none is to be had).
fn random_unit() -> f64 {
    let mut b = [0u8; 8];
    match getrandom::fill(&mut b) {
        Ok(()) => (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

/// A failed request's reason, with its causes, short.
fn describe(err: reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if text.len() > MAX_ERROR {
        let mut cut = MAX_ERROR;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}
