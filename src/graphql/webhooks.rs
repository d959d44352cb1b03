//! Webhook endpoints and their deliveries, for machine clients with the
//! `webhooks:manage` scope. What a delivery looks like and how it is
//! signed is `service::webhooks`'s.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use super::error::{GqlResult, bad_input};
use super::events::CaseEventType;
use super::workflow::actor;
use crate::config::WebhookArgs;
use crate::domain::event::EventType;
use crate::graphql::cost;
use crate::http::RequestId;
use crate::service::webhooks::{self as service, EndpointUpdate, Manager, NewEndpoint};

fn manager<'a>(ctx: &'a Context<'_>) -> Result<Manager<'a>> {
    Ok(Manager {
        db: ctx.data::<DatabaseConnection>()?,
        actor: actor(ctx)?,
        settings: ctx.data::<Arc<WebhookArgs>>()?,
        request_id: ctx.data::<RequestId>().ok().and_then(|r| r.0.as_deref()),
    })
}

fn parse_id(field: &'static str, id: &ID) -> Result<uuid::Uuid> {
    id.parse::<uuid::Uuid>().map_err(|_| bad_input(field, "not a valid identifier"))
}

fn types(list: Vec<CaseEventType>) -> Vec<EventType> {
    list.into_iter().map(EventType::from).collect()
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct WebhookEndpoint(service::Endpoint);

/// Where an agency (or a partnership) hears of changes to its cases, as
/// signed HTTP POSTs (Standard Webhooks 1.0). The secret is shown only by
/// `createWebhookEndpoint` and `rotateWebhookSecret`.
#[Object]
impl WebhookEndpoint {
    /// Opaque identifier of the endpoint.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Where deliveries are posted.
    async fn url(&self) -> &str {
        &self.0.url
    }

    /// The owner's description.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// The event types it receives (empty: every type).
    async fn event_types(&self) -> Vec<CaseEventType> {
        self.0.event_types.iter().map(|&t| t.into()).collect()
    }

    /// Whether it receives deliveries.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// Why the server disabled it (its deliveries kept failing), if it did;
    /// cleared by enabling it again.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }

    /// The agency it belongs to (null: the partnership's).
    async fn agency_id(&self) -> Option<ID> {
        self.0.agency.map(|a| ID(a.to_string()))
    }

    /// The partnership it belongs to.
    async fn partnership_id(&self) -> ID {
        ID(self.0.partnership.to_string())
    }

    /// After a rotation: until when deliveries are also signed with the
    /// previous secret (null otherwise).
    async fn previous_secret_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.previous_secret_until
    }

    /// When it was deleted (null while it is not). A deleted endpoint is
    /// kept, receives nothing and cannot be changed.
    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.0.deleted_at
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Where a delivery stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::service::webhooks::DeliveryState")]
pub enum WebhookDeliveryState {
    /// Waiting for its first attempt or a retry.
    Pending,
    /// A 2xx answered.
    Delivered,
    /// Every attempt of the schedule failed, or the endpoint was disabled
    /// or deleted; `redeliverWebhook` sends it again.
    Failed,
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct WebhookAttempt(service::Attempt);

/// One attempt to send a delivery.
#[Object]
impl WebhookAttempt {
    /// When it started.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }

    /// The receiver's HTTP status (null: no answer).
    async fn http_status(&self) -> Option<i32> {
        self.0.http_status
    }

    /// How long it took, in milliseconds.
    async fn latency_ms(&self) -> i64 {
        self.0.latency_ms
    }

    /// Why it failed (a status other than 2xx, a timeout, a refused
    /// address, no connection); null when it succeeded.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct WebhookDelivery(service::Delivery);

/// One event for one endpoint.
#[Object]
impl WebhookDelivery {
    /// Opaque identifier of the delivery (for `redeliverWebhook`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The event's id, sent as `webhook-id` (the same on every attempt, so
    /// a receiver can drop duplicates), as `caseEvents` shows it.
    async fn event_id(&self) -> ID {
        ID(self.0.event_id.to_string())
    }

    /// The event's type.
    async fn event_type(&self) -> CaseEventType {
        self.0.event_type.into()
    }

    /// The case.
    async fn case_id(&self) -> ID {
        ID(self.0.case.to_string())
    }

    /// Where it stands.
    async fn state(&self) -> WebhookDeliveryState {
        self.0.state.into()
    }

    /// When the next attempt is due (pending deliveries only).
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_attempt_at
    }

    /// When it was written, with its event.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When a 2xx answered.
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }

    /// Its attempts, oldest first (the latest 20).
    #[graphql(complexity = "cost::list(service::ATTEMPTS_SHOWN, child_complexity)")]
    async fn attempts(&self) -> Vec<WebhookAttempt> {
        self.0.attempts.iter().cloned().map(WebhookAttempt).collect()
    }
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct WebhookDeliveryEdge(service::Delivery);

/// A delivery with its place in the list.
#[Object]
impl WebhookDeliveryEdge {
    /// Pass as `after` to continue after this delivery.
    async fn cursor(&self) -> String {
        encode(self.0.seq)
    }

    /// The delivery.
    async fn node(&self) -> WebhookDelivery {
        WebhookDelivery(self.0.clone())
    }
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct WebhookDeliveryConnection {
    deliveries: Vec<service::Delivery>,
    has_next_page: bool,
    has_previous_page: bool,
}

/// A page of an endpoint's deliveries, oldest first (Relay-style).
#[Object]
impl WebhookDeliveryConnection {
    /// The deliveries of this page with their cursors.
    async fn edges(&self) -> Vec<WebhookDeliveryEdge> {
        self.deliveries.iter().cloned().map(WebhookDeliveryEdge).collect()
    }

    /// The deliveries of this page.
    async fn nodes(&self) -> Vec<WebhookDelivery> {
        self.deliveries.iter().cloned().map(WebhookDelivery).collect()
    }

    /// Where this page stands.
    async fn page_info(&self) -> super::case::PageInfo {
        super::case::PageInfo {
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            start_cursor: self.deliveries.first().map(|d| encode(d.seq)),
            end_cursor: self.deliveries.last().map(|d| encode(d.seq)),
        }
    }
}

fn encode(seq: i64) -> String {
    format!("d{seq:x}")
}

fn decode(cursor: &str) -> Option<i64> {
    let seq = cursor.strip_prefix('d')?;
    if seq.is_empty() || seq.len() > 15 || !seq.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    i64::from_str_radix(seq, 16).ok()
}

/// The webhook queries.
#[derive(Default)]
pub struct WebhooksQuery;

#[Object]
impl WebhooksQuery {
    /// The endpoints of the caller's agency (or, for a `statistics:read`
    /// client without an agency, its partnership), deleted ones included,
    /// oldest first. Needs the `webhooks:manage` scope.
    #[graphql(complexity = "cost::list(4 * service::MOST_ENDPOINTS, child_complexity)")]
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> Result<Vec<WebhookEndpoint>> {
        let list = manager(ctx)?.list().await.gql()?;
        Ok(list.into_iter().map(WebhookEndpoint).collect())
    }

    /// One of the caller's endpoints' deliveries, oldest first, each with
    /// its attempts.
    #[graphql(complexity = "cost::page(first, child_complexity)")]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] endpoint_id: ID,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(desc = "Page size, 1 to 100.", default = 20)] first: i32,
    ) -> Result<WebhookDeliveryConnection> {
        if !(1..=100).contains(&first) {
            return Err(bad_input("first", "between 1 and 100"));
        }
        let endpoint = parse_id("endpointId", &endpoint_id)?;
        let after = match after {
            None => None,
            Some(c) => {
                Some(decode(&c).ok_or_else(|| bad_input("after", "not a cursor of this list"))?)
            }
        };
        let first = u64::try_from(first).unwrap_or(20);
        let (deliveries, has_next_page) =
            manager(ctx)?.deliveries(endpoint, after, first).await.gql()?;
        Ok(WebhookDeliveryConnection {
            deliveries,
            has_next_page,
            has_previous_page: after.is_some(),
        })
    }
}

/// A new endpoint.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// Where to post deliveries: https, to a public address (checked now
    /// and at every connect); no user name, password or fragment.
    pub url: String,
    /// The event types to receive (empty or absent: every type).
    pub event_types: Option<Vec<CaseEventType>>,
    /// What the endpoint is for (at most 500 characters).
    #[graphql(default)]
    pub description: String,
}

/// What to change of an endpoint (absent fields stay as they are).
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    /// The endpoint.
    pub id: ID,
    /// A new URL (checked like a new one's).
    pub url: Option<String>,
    /// New event types (empty: every type).
    pub event_types: Option<Vec<CaseEventType>>,
    /// A new description.
    pub description: Option<String>,
    /// Enable or disable deliveries; enabling clears `disabledReason`.
    pub enabled: Option<bool>,
}

/// Names one endpoint.
#[derive(InputObject)]
pub struct WebhookEndpointIdInput {
    /// The endpoint.
    pub id: ID,
}

/// Names one delivery.
#[derive(InputObject)]
pub struct RedeliverWebhookInput {
    /// The delivery (from `webhookDeliveries`).
    pub delivery_id: ID,
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct WebhookEndpointWithSecret(service::WithSecret);

/// An endpoint with its signing secret, shown this once.
#[Object]
impl WebhookEndpointWithSecret {
    /// The endpoint.
    async fn endpoint(&self) -> WebhookEndpoint {
        WebhookEndpoint(self.0.endpoint.clone())
    }

    /// The signing secret, `whsec_` then base64: keep it; it is not shown
    /// again.
    async fn secret(&self) -> &str {
        &self.0.secret
    }
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct WebhookEndpointPayload(service::Endpoint);

/// The endpoint after the change.
#[Object]
impl WebhookEndpointPayload {
    /// The endpoint.
    async fn endpoint(&self) -> WebhookEndpoint {
        WebhookEndpoint(self.0.clone())
    }
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct RedeliverWebhookPayload(service::Delivery);

/// The delivery, pending again.
#[Object]
impl RedeliverWebhookPayload {
    /// The delivery.
    async fn delivery(&self) -> WebhookDelivery {
        WebhookDelivery(self.0.clone())
    }
}

/// The webhook mutations: each needs the `webhooks:manage` scope, acts on
/// the caller's own endpoints only (another's is `NOT_FOUND`) and is
/// audited.
#[derive(Default)]
pub struct WebhooksMutation;

#[Object]
impl WebhooksMutation {
    /// Creates an endpoint that receives the events of the caller's
    /// agency's cases (a `statistics:read` client without an agency: its
    /// partnership's). Returns the signing secret, once.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] input: CreateWebhookEndpointInput,
    ) -> Result<WebhookEndpointWithSecret> {
        let new = NewEndpoint {
            url: input.url,
            event_types: types(input.event_types.unwrap_or_default()),
            description: input.description,
        };
        Ok(WebhookEndpointWithSecret(manager(ctx)?.create(new).await.gql()?))
    }

    /// Changes an endpoint's URL, event types, description or whether it
    /// is enabled.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change.")] input: UpdateWebhookEndpointInput,
    ) -> Result<WebhookEndpointPayload> {
        let id = parse_id("id", &input.id)?;
        let up = EndpointUpdate {
            url: input.url,
            event_types: input.event_types.map(types),
            description: input.description,
            enabled: input.enabled,
        };
        Ok(WebhookEndpointPayload(manager(ctx)?.update(id, up).await.gql()?))
    }

    /// Gives an endpoint a new secret, returned once; deliveries carry
    /// both signatures, new and previous, for `WEBHOOK_SECRET_GRACE`.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] input: WebhookEndpointIdInput,
    ) -> Result<WebhookEndpointWithSecret> {
        let id = parse_id("id", &input.id)?;
        Ok(WebhookEndpointWithSecret(manager(ctx)?.rotate(id).await.gql()?))
    }

    /// Deletes an endpoint: it is kept, marked deleted, and receives
    /// nothing more (its pending deliveries fail).
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] input: WebhookEndpointIdInput,
    ) -> Result<WebhookEndpointPayload> {
        let id = parse_id("id", &input.id)?;
        Ok(WebhookEndpointPayload(manager(ctx)?.delete(id).await.gql()?))
    }

    /// Sends a delivered or failed delivery again, from the start of the
    /// retry schedule, with the same `webhook-id`.
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The delivery.")] input: RedeliverWebhookInput,
    ) -> Result<RedeliverWebhookPayload> {
        let id = parse_id("deliveryId", &input.delivery_id)?;
        Ok(RedeliverWebhookPayload(manager(ctx)?.redeliver(id).await.gql()?))
    }
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    #[test]
    fn cursors_read_back_and_nothing_else_does() {
        for seq in [1, 9_000_000_001] {
            assert_eq!(decode(&encode(seq)), Some(seq));
        }
        for bad in ["", "1", "d", "dx", "d-1", "e1", "d1111111111111111"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
