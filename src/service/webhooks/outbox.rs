//! The outbox: one delivery row per event and endpoint, written by the
//! event's own transaction (`events::append` calls [`enqueue`]), so a
//! delivery exists exactly when its event does, and a crash between the
//! commit and the send loses nothing: the row waits for a worker.
//!
//! The body is fixed when the row is written, so every attempt sends the
//! same bytes: the event as the feed (`caseEvents`) shows it, ids and
//! states only, never free text or the child reference, wrapped as the
//! Standard Webhooks specification suggests (`type`, `timestamp`, `data`).

use std::sync::LazyLock;

use chrono::{DateTime, SecondsFormat, Utc};
use entity::{change_event, webhook_delivery, webhook_endpoint};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
};
use tokio::sync::watch;

use super::{DeliveryState, millis};
use crate::domain::access::WebhookOwner;
use crate::domain::event::EventType;
use crate::domain::ids::{AgencyId, PartnershipId};
use crate::domain::webhook as rules;
use crate::service::ServiceError;
use crate::service::cases::CaseStatus;

/// Bumped after every commit that may have written deliveries, so that the
/// workers of this process look at once (other processes poll).
static COMMITTED: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::channel(0).0);

/// Tells this process's workers that deliveries may be due.
pub fn committed() {
    COMMITTED.send_modify(|n| *n = n.wrapping_add(1));
}

/// A receiver that changes after each [`committed`].
pub fn subscribe() -> watch::Receiver<u64> {
    COMMITTED.subscribe()
}

/// The GraphQL spelling of a status, as the feed shows it.
fn status_name(s: &str) -> &'static str {
    match CaseStatus::parse(s) {
        Some(CaseStatus::Open) => "OPEN",
        Some(CaseStatus::Resolved) => "RESOLVED",
        Some(CaseStatus::Withdrawn) => "WITHDRAWN",
        None => "UNKNOWN",
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The body of an event's deliveries: the event's fields as `caseEvents`
/// names them, under `data`.
pub fn payload(event: &change_event::Model) -> String {
    serde_json::json!({
        "type": event.kind,
        "timestamp": time(event.at),
        "data": {
            "id": event.id,
            "type": event.kind,
            "caseId": event.case_id,
            "partnershipId": event.partnership_id,
            "raisingAgencyId": event.raising_agency_id,
            "receivingAgencyId": event.receiving_agency_id,
            "stageBefore": event.stage_before,
            "stageAfter": event.stage_after,
            "status": status_name(&event.status),
            "version": event.case_version,
            "at": time(event.at),
            "requestId": event.request_id,
            "milestone": event.milestone,
            "actionId": event.action_id,
            "deadlineAt": event.deadline_at.map(time),
            "lateSeconds": event.late_ms.map(|ms| ms / 1000),
        }
    })
    .to_string()
}

/// Writes the deliveries of `event` (as stored, with its `seq`) in the
/// event's transaction: one per enabled endpoint whose owner may read the
/// case and which asked for the event's type.
pub(crate) async fn enqueue(
    txn: &impl ConnectionTrait,
    event: &change_event::Model,
) -> Result<(), ServiceError> {
    // The agencies taking part in the case beyond the two parties: their
    // readers see it, so their endpoints receive it.
    use sea_orm::QuerySelect as _;
    let participants: Vec<uuid::Uuid> = entity::case_participant::Entity::find()
        .select_only()
        .column(entity::case_participant::Column::AgencyId)
        .filter(entity::case_participant::Column::CaseId.eq(event.case_id))
        .filter(entity::case_participant::Column::LeftAt.is_null())
        .into_tuple()
        .all(txn)
        .await?;
    let mut agencies = vec![event.raising_agency_id, event.receiving_agency_id];
    agencies.extend(participants.iter().copied());
    let endpoints = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::PartnershipId.eq(event.partnership_id))
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .filter(webhook_endpoint::Column::DeletedAt.is_null())
        .filter(
            Condition::any()
                .add(webhook_endpoint::Column::AgencyId.is_null())
                .add(webhook_endpoint::Column::AgencyId.is_in(agencies)),
        )
        .all(txn)
        .await?;
    let Some(kind) = EventType::parse(&event.kind) else {
        return Err(ServiceError::Internal(format!("unknown event type {:?}", event.kind)));
    };
    let (partnership, raising, receiving) = (
        PartnershipId::from_uuid(event.partnership_id),
        AgencyId::from_uuid(event.raising_agency_id),
        AgencyId::from_uuid(event.receiving_agency_id),
    );
    let joined: Vec<AgencyId> = participants.into_iter().map(AgencyId::from_uuid).collect();
    let body = payload(event);
    let now = millis(event.at);
    let rows: Vec<webhook_delivery::ActiveModel> = endpoints
        .iter()
        .filter(|e| {
            let owner = WebhookOwner::of(
                PartnershipId::from_uuid(e.partnership_id),
                e.agency_id.map(AgencyId::from_uuid),
            );
            owner.receives(partnership, raising, receiving, &joined)
                && rules::wants(&rules::decode_types(&e.event_types), kind)
        })
        .map(|e| webhook_delivery::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            endpoint_id: Set(e.id),
            event_id: Set(event.id),
            event_seq: Set(event.seq),
            event_type: Set(event.kind.clone()),
            case_id: Set(event.case_id),
            payload: Set(body.clone()),
            state: Set(DeliveryState::Pending.as_str().to_owned()),
            step: Set(0),
            due_at_ms: Set(now),
            created_at: Set(event.at),
            created_at_ms: Set(now),
            delivered_at: Set(None),
            ..Default::default()
        })
        .collect();
    if !rows.is_empty() {
        webhook_delivery::Entity::insert_many(rows).exec_without_returning(txn).await?;
    }
    Ok(())
}

/// How many deliveries wait and how old (seconds) the oldest of them is.
pub async fn backlog(db: &impl ConnectionTrait) -> Result<(u64, f64), ServiceError> {
    use sea_orm::{FromQueryResult, QuerySelect};
    #[derive(FromQueryResult)]
    struct Row {
        n: i64,
        oldest: Option<i64>,
    }
    let row = webhook_delivery::Entity::find()
        .select_only()
        .column_as(webhook_delivery::Column::Seq.count(), "n")
        .column_as(webhook_delivery::Column::CreatedAtMs.min(), "oldest")
        .filter(webhook_delivery::Column::State.eq(DeliveryState::Pending.as_str()))
        .into_model::<Row>()
        .one(db)
        .await?;
    let now = millis(Utc::now());
    Ok(match row {
        Some(Row { n, oldest: Some(o) }) => {
            (u64::try_from(n).unwrap_or(0), (now - o).max(0) as f64 / 1000.0)
        }
        _ => (0, 0.0),
    })
}
