//! Webhooks: endpoints that hear of changes to their owner's cases over
//! HTTP, signed as Standard Webhooks 1.0 says, delivered at least once.
//!
//! - Endpoints (this module) are managed by machine clients with
//!   `webhooks:manage`; whose they are and what they receive is
//!   `domain::access::webhook_owner` / `WebhookOwner::receives`. Every
//!   change to one is a row of `webhook_audit`, in the change's
//!   transaction. Deleted endpoints are kept, marked deleted.
//! - The outbox (`outbox`): the event's transaction (`events::append`)
//!   writes one delivery row per enabled endpoint that receives the event,
//!   so a delivery exists exactly when its event does.
//! - The worker (`worker`), one per `serve` process, claims endpoints with
//!   due deliveries through the database and sends their deliveries in
//!   event order (`client`: no redirects, a timeout, only public
//!   addresses, checked at the connect).

pub mod client;
pub mod outbox;
pub mod worker;

use chrono::{DateTime, Utc};
use entity::{webhook_attempt, webhook_audit, webhook_delivery, webhook_endpoint};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

use super::ServiceError;
use crate::config::WebhookArgs;
use crate::domain::access::{WebhookOwner, webhook_owner};
use crate::domain::actor::Actor;
use crate::domain::event::EventType;
use crate::domain::ids::{AgencyId, CaseId, PartnershipId};
use crate::domain::webhook::{self as rules, Secret};

/// The most endpoints (not deleted) one owner keeps; one more is
/// `Conflict`. Each event is written once per endpoint that receives it.
pub const MOST_ENDPOINTS: usize = 20;

/// The longest description.
pub const MAX_DESCRIPTION: usize = 500;

/// The latest attempts shown with a delivery.
pub const ATTEMPTS_SHOWN: usize = 20;

/// An endpoint as the API shows it (never its secret).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its id.
    pub id: uuid::Uuid,
    /// The partnership it belongs to.
    pub partnership: PartnershipId,
    /// The agency it belongs to (none: the partnership's).
    pub agency: Option<AgencyId>,
    /// Where deliveries go.
    pub url: String,
    /// The owner's description.
    pub description: String,
    /// The event types it receives (empty: all).
    pub event_types: Vec<EventType>,
    /// Whether it receives deliveries.
    pub enabled: bool,
    /// Why it was disabled by the server, if it was.
    pub disabled_reason: Option<String>,
    /// Until when the previous secret also signs (after a rotation).
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// When it was deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// An endpoint with its secret, shown once (creation, rotation).
#[derive(Debug, Clone)]
pub struct WithSecret {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// `whsec_…`.
    pub secret: String,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its (next) attempt.
    Pending,
    /// A 2xx answered.
    Delivered,
    /// Every attempt of the schedule failed, or the endpoint was disabled.
    Failed,
}

impl DeliveryState {
    /// The stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, ServiceError> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| ServiceError::Internal(format!("unknown delivery state {s:?}")))
    }
}

/// One attempt to send a delivery.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// When it started.
    pub at: DateTime<Utc>,
    /// The HTTP status of the answer (none: no answer).
    pub http_status: Option<i32>,
    /// How long it took, in milliseconds.
    pub latency_ms: i64,
    /// Why it failed, if it did (never the receiver's body).
    pub error: Option<String>,
}

/// One event for one endpoint.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Its place in the endpoint's list (the cursor).
    pub seq: i64,
    /// Its id.
    pub id: uuid::Uuid,
    /// The endpoint.
    pub endpoint: uuid::Uuid,
    /// The event's id: the `webhook-id` header.
    pub event_id: uuid::Uuid,
    /// The event's type.
    pub event_type: EventType,
    /// The case.
    pub case: CaseId,
    /// Where it stands.
    pub state: DeliveryState,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was written (with its event).
    pub created_at: DateTime<Utc>,
    /// When a 2xx answered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The latest attempts, oldest first.
    pub attempts: Vec<Attempt>,
}

/// A new endpoint, as sent.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Where deliveries go.
    pub url: String,
    /// Which types (empty: all).
    pub event_types: Vec<EventType>,
    /// The owner's description.
    pub description: String,
}

/// What an update changes (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct EndpointUpdate {
    /// A new URL.
    pub url: Option<String>,
    /// New types.
    pub event_types: Option<Vec<EventType>>,
    /// A new description.
    pub description: Option<String>,
    /// Enable or disable; enabling clears the server's reason.
    pub enabled: Option<bool>,
}

/// Who manages, with what.
#[derive(Clone, Copy)]
pub struct Manager<'a> {
    /// The pool.
    pub db: &'a DatabaseConnection,
    /// The caller.
    pub actor: &'a Actor,
    /// Webhook settings.
    pub settings: &'a WebhookArgs,
    /// The request's id, for the audit.
    pub request_id: Option<&'a str>,
}

/// Unix milliseconds.
pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

fn owner(actor: &Actor) -> Result<WebhookOwner, ServiceError> {
    webhook_owner(actor).map_err(|r| {
        ServiceError::forbidden(r.to_string(), crate::domain::access::Allowed::default())
    })
}

/// A fresh random secret.
pub(crate) fn new_secret() -> Result<Secret, ServiceError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ServiceError::Internal(format!("no randomness for a secret: {e}")))?;
    Ok(Secret::from_bytes(bytes))
}

/// Checks a URL as it is created or changed: its form, and where its name
/// resolves now (it is checked again at every connect).
async fn check_url(raw: &str, settings: &WebhookArgs) -> Result<String, ServiceError> {
    let allow = settings.webhook_allow_private_addresses;
    let url =
        rules::check_url(raw, allow).map_err(|r| ServiceError::bad_input("url", r.to_string()))?;
    if let (Some(url::Host::Domain(name)), false) = (url.host(), allow) {
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs = tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| ServiceError::bad_input("url", format!("{name} does not resolve")))?;
        for addr in addrs {
            rules::check_address(addr.ip(), false)
                .map_err(|r| ServiceError::bad_input("url", format!("{name} resolves to {r}")))?;
        }
    }
    Ok(url.to_string())
}

fn check_description(d: &str) -> Result<(), ServiceError> {
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(ServiceError::bad_input(
            "description",
            format!("at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(())
}

async fn begin(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, ServiceError> {
    Ok(db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?)
}

async fn audit(
    txn: &impl ConnectionTrait,
    m: &Manager<'_>,
    endpoint: uuid::Uuid,
    action: &str,
    at: DateTime<Utc>,
    data: serde_json::Value,
) -> Result<(), ServiceError> {
    webhook_audit::Entity::insert(webhook_audit::ActiveModel {
        endpoint_id: Set(endpoint),
        at: Set(at),
        actor_issuer: Set(m.actor.issuer.clone()),
        actor_sub: Set(m.actor.sub.clone()),
        action: Set(action.to_owned()),
        data: Set(data.to_string()),
        request_id: Set(m.request_id.map(str::to_owned)),
        ..Default::default()
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

fn owned_by(owner: WebhookOwner) -> sea_orm::Condition {
    let c = sea_orm::Condition::all()
        .add(webhook_endpoint::Column::PartnershipId.eq(owner.partnership().uuid()));
    match owner.agency() {
        Some(a) => c.add(webhook_endpoint::Column::AgencyId.eq(a.uuid())),
        None => c.add(webhook_endpoint::Column::AgencyId.is_null()),
    }
}

async fn load_owned(
    db: &impl ConnectionTrait,
    owner: WebhookOwner,
    id: uuid::Uuid,
) -> Result<webhook_endpoint::Model, ServiceError> {
    webhook_endpoint::Entity::find_by_id(id)
        .filter(owned_by(owner))
        .one(db)
        .await?
        .ok_or(ServiceError::NotFound("webhook endpoint"))
}

fn view(m: webhook_endpoint::Model) -> Endpoint {
    Endpoint {
        id: m.id,
        partnership: PartnershipId::from_uuid(m.partnership_id),
        agency: m.agency_id.map(AgencyId::from_uuid),
        url: m.url,
        description: m.description,
        event_types: rules::decode_types(&m.event_types),
        enabled: m.enabled,
        disabled_reason: m.disabled_reason,
        previous_secret_until: m
            .previous_secret_until_ms
            .filter(|&until| until > millis(Utc::now()))
            .and_then(from_millis),
        deleted_at: m.deleted_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

fn described(m: &webhook_endpoint::Model) -> serde_json::Value {
    serde_json::json!({
        "url": m.url,
        "eventTypes": m.event_types,
        "enabled": m.enabled,
        "description": m.description,
    })
}

impl Manager<'_> {
    /// Creates an endpoint of the caller's agency (or partnership).
    #[tracing::instrument(skip_all)]
    pub async fn create(&self, new: NewEndpoint) -> Result<WithSecret, ServiceError> {
        let owner = owner(self.actor)?;
        let url = check_url(&new.url, self.settings).await?;
        check_description(&new.description)?;
        let secret = new_secret()?;
        let now = super::audit::now();
        let txn = begin(self.db).await?;
        let held = webhook_endpoint::Entity::find()
            .filter(owned_by(owner))
            .filter(webhook_endpoint::Column::DeletedAt.is_null())
            .count(&txn)
            .await?;
        if !crate::domain::access::has_room(held, MOST_ENDPOINTS) {
            return Err(ServiceError::Conflict(format!(
                "an owner keeps at most {MOST_ENDPOINTS} webhook endpoints; delete one first"
            )));
        }
        let model = webhook_endpoint::Model {
            id: uuid::Uuid::now_v7(),
            partnership_id: owner.partnership().uuid(),
            agency_id: owner.agency().map(|a| a.uuid()),
            owner_issuer: self.actor.issuer.clone(),
            owner_sub: self.actor.sub.clone(),
            url,
            description: new.description,
            event_types: rules::encode_types(&new.event_types),
            secret: secret.expose(),
            previous_secret: None,
            previous_secret_until_ms: None,
            enabled: true,
            disabled_reason: None,
            failing_since_ms: None,
            deleted_at: None,
            created_at: now,
            updated_at: now,
            lease_owner: None,
            lease_until_ms: None,
        };
        webhook_endpoint::Entity::insert(model.clone().into_active_model())
            .exec_without_returning(&txn)
            .await?;
        audit(&txn, self, model.id, "CREATE", now, described(&model)).await?;
        txn.commit().await?;
        tracing::info!(webhook.endpoint = %model.id, "webhook endpoint created");
        Ok(WithSecret { endpoint: view(model), secret: secret.expose() })
    }

    async fn change(
        &self,
        id: uuid::Uuid,
        action: &str,
        apply: impl FnOnce(&mut webhook_endpoint::Model, DateTime<Utc>) -> Result<(), ServiceError>,
    ) -> Result<webhook_endpoint::Model, ServiceError> {
        let owner = owner(self.actor)?;
        let now = super::audit::now();
        let txn = begin(self.db).await?;
        let mut row = load_owned(&txn, owner, id).await?;
        if row.deleted_at.is_some() {
            return Err(ServiceError::Conflict("the webhook endpoint is deleted".into()));
        }
        apply(&mut row, now)?;
        row.updated_at = now;
        let mut data = described(&row);
        if action == "ROTATE_SECRET" {
            data["previousSecretUntil"] = row.previous_secret_until_ms.into();
        }
        let mut active = sea_orm::ActiveModelTrait::reset_all(row.clone().into_active_model());
        active.id = sea_orm::ActiveValue::Unchanged(row.id);
        // The worker's lease is the worker's: never written here.
        active.lease_owner = sea_orm::ActiveValue::NotSet;
        active.lease_until_ms = sea_orm::ActiveValue::NotSet;
        webhook_endpoint::Entity::update(active).exec(&txn).await?;
        audit(&txn, self, row.id, action, now, data).await?;
        txn.commit().await?;
        tracing::info!(webhook.endpoint = %row.id, action, "webhook endpoint changed");
        Ok(row)
    }

    /// Changes an endpoint's URL, types, description or whether it is
    /// enabled.
    #[tracing::instrument(skip_all, fields(webhook.endpoint = %id))]
    pub async fn update(
        &self,
        id: uuid::Uuid,
        up: EndpointUpdate,
    ) -> Result<Endpoint, ServiceError> {
        let url = match &up.url {
            Some(u) => Some(check_url(u, self.settings).await?),
            None => None,
        };
        if let Some(d) = &up.description {
            check_description(d)?;
        }
        let row = self
            .change(id, "UPDATE", |row, _| {
                if let Some(url) = url {
                    row.url = url;
                }
                if let Some(types) = &up.event_types {
                    row.event_types = rules::encode_types(types);
                }
                if let Some(d) = up.description {
                    row.description = d;
                }
                if let Some(enabled) = up.enabled {
                    row.enabled = enabled;
                    if enabled {
                        row.disabled_reason = None;
                        row.failing_since_ms = None;
                    }
                }
                Ok(())
            })
            .await?;
        Ok(view(row))
    }

    /// Gives an endpoint a new secret; the previous one also signs for
    /// the grace period.
    #[tracing::instrument(skip_all, fields(webhook.endpoint = %id))]
    pub async fn rotate(&self, id: uuid::Uuid) -> Result<WithSecret, ServiceError> {
        let secret = new_secret()?;
        let grace = chrono::Duration::from_std(self.settings.webhook_secret_grace)
            .unwrap_or(chrono::Duration::MAX);
        let exposed = secret.expose();
        let row = self
            .change(id, "ROTATE_SECRET", |row, now| {
                row.previous_secret = Some(std::mem::replace(&mut row.secret, exposed));
                row.previous_secret_until_ms =
                    Some(millis(now.checked_add_signed(grace).unwrap_or(now)));
                Ok(())
            })
            .await?;
        Ok(WithSecret { endpoint: view(row), secret: secret.expose() })
    }

    /// Marks an endpoint deleted (kept, disabled); its pending deliveries
    /// fail.
    #[tracing::instrument(skip_all, fields(webhook.endpoint = %id))]
    pub async fn delete(&self, id: uuid::Uuid) -> Result<Endpoint, ServiceError> {
        let row = self
            .change(id, "DELETE", |row, now| {
                row.enabled = false;
                row.deleted_at = Some(now);
                Ok(())
            })
            .await?;
        Ok(view(row))
    }

    /// Sends a delivery again, from the start of the schedule.
    #[tracing::instrument(skip_all, fields(webhook.delivery = %id))]
    pub async fn redeliver(&self, id: uuid::Uuid) -> Result<Delivery, ServiceError> {
        let owner = owner(self.actor)?;
        let now = super::audit::now();
        let txn = begin(self.db).await?;
        let delivery = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Id.eq(id))
            .one(&txn)
            .await?
            .ok_or(ServiceError::NotFound("webhook delivery"))?;
        let endpoint = load_owned(&txn, owner, delivery.endpoint_id)
            .await
            .map_err(|_| ServiceError::NotFound("webhook delivery"))?;
        if endpoint.deleted_at.is_some() {
            return Err(ServiceError::Conflict("the webhook endpoint is deleted".into()));
        }
        if !endpoint.enabled {
            return Err(ServiceError::Conflict(
                "the webhook endpoint is disabled; enable it first".into(),
            ));
        }
        if delivery.state == DeliveryState::Pending.as_str() {
            return Err(ServiceError::Conflict("the delivery is already pending".into()));
        }
        webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::State, Expr::value(DeliveryState::Pending.as_str()))
            .col_expr(webhook_delivery::Column::Step, Expr::value(0))
            .col_expr(webhook_delivery::Column::DueAtMs, Expr::value(millis(now)))
            .filter(webhook_delivery::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        audit(
            &txn,
            self,
            endpoint.id,
            "REDELIVER",
            now,
            serde_json::json!({ "delivery": id, "event": delivery.event_id }),
        )
        .await?;
        txn.commit().await?;
        outbox::committed();
        let mut delivery = delivery;
        delivery.state = DeliveryState::Pending.as_str().to_owned();
        delivery.due_at_ms = millis(now);
        let attempts = attempts_of(self.db, &[delivery.id]).await?;
        to_delivery(delivery, &attempts)
    }

    /// The caller's endpoints, deleted ones included, oldest first.
    pub async fn list(&self) -> Result<Vec<Endpoint>, ServiceError> {
        let owner = owner(self.actor)?;
        let rows = webhook_endpoint::Entity::find()
            .filter(owned_by(owner))
            .order_by_asc(webhook_endpoint::Column::CreatedAt)
            .order_by_asc(webhook_endpoint::Column::Id)
            .limit(4 * MOST_ENDPOINTS as u64)
            .all(self.db)
            .await?;
        Ok(rows.into_iter().map(view).collect())
    }

    /// An endpoint's deliveries after the one numbered `after`, oldest
    /// first, at most `first`, and whether more follow (two statements).
    pub async fn deliveries(
        &self,
        endpoint: uuid::Uuid,
        after: Option<i64>,
        first: u64,
    ) -> Result<(Vec<Delivery>, bool), ServiceError> {
        let owner = owner(self.actor)?;
        load_owned(self.db, owner, endpoint).await?;
        let mut query = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::EndpointId.eq(endpoint))
            .order_by_asc(webhook_delivery::Column::Seq)
            .limit(first + 1);
        if let Some(after) = after {
            query = query.filter(webhook_delivery::Column::Seq.gt(after));
        }
        let mut rows = query.all(self.db).await?;
        let more = rows.len() as u64 > first;
        rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
        let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
        let attempts = attempts_of(self.db, &ids).await?;
        let out = rows.into_iter().map(|r| to_delivery(r, &attempts)).collect::<Result<_, _>>()?;
        Ok((out, more))
    }
}

async fn attempts_of(
    db: &impl ConnectionTrait,
    deliveries: &[uuid::Uuid],
) -> Result<Vec<webhook_attempt::Model>, ServiceError> {
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    Ok(webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::DeliveryId.is_in(deliveries.iter().copied()))
        .order_by_asc(webhook_attempt::Column::Seq)
        .all(db)
        .await?)
}

fn to_delivery(
    r: webhook_delivery::Model,
    attempts: &[webhook_attempt::Model],
) -> Result<Delivery, ServiceError> {
    let state = DeliveryState::parse(&r.state)?;
    let mut mine: Vec<Attempt> = attempts
        .iter()
        .filter(|a| a.delivery_id == r.id)
        .map(|a| Attempt {
            at: a.at,
            http_status: a.http_status,
            latency_ms: a.latency_ms,
            error: a.error.clone(),
        })
        .collect();
    if mine.len() > ATTEMPTS_SHOWN {
        mine.drain(..mine.len() - ATTEMPTS_SHOWN);
    }
    Ok(Delivery {
        seq: r.seq,
        id: r.id,
        endpoint: r.endpoint_id,
        event_id: r.event_id,
        event_type: EventType::parse(&r.event_type).ok_or_else(|| {
            ServiceError::Internal(format!("unknown event type {:?}", r.event_type))
        })?,
        case: CaseId::from_uuid(r.case_id),
        state,
        next_attempt_at: (state == DeliveryState::Pending)
            .then(|| from_millis(r.due_at_ms))
            .flatten(),
        created_at: r.created_at,
        delivered_at: r.delivered_at,
        attempts: mine,
    })
}
