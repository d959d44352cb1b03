//! Webhooks: endpoints (owned by an agency, or by a partnership for a
//! statistics client), the outbox of deliveries (one row per event and
//! endpoint, written in the event's transaction), each delivery's
//! attempts, and the audit of every change to an endpoint.
//!
//! Scheduling times (`due_at_ms`, `lease_until_ms`, …) are Unix
//! milliseconds in BIGINT columns: compared the same way on both backends.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookEndpoint {
    Table,
    Id,
    PartnershipId,
    AgencyId,
    OwnerIssuer,
    OwnerSub,
    Url,
    Description,
    EventTypes,
    Secret,
    PreviousSecret,
    PreviousSecretUntilMs,
    Enabled,
    DisabledReason,
    FailingSinceMs,
    DeletedAt,
    CreatedAt,
    UpdatedAt,
    LeaseOwner,
    LeaseUntilMs,
}

#[derive(DeriveIden)]
enum WebhookDelivery {
    Table,
    Seq,
    Id,
    EndpointId,
    EventId,
    EventSeq,
    EventType,
    CaseId,
    Payload,
    State,
    Step,
    DueAtMs,
    CreatedAt,
    CreatedAtMs,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum WebhookAttempt {
    Table,
    Seq,
    DeliveryId,
    At,
    HttpStatus,
    LatencyMs,
    Error,
}

#[derive(DeriveIden)]
enum WebhookAudit {
    Table,
    Seq,
    EndpointId,
    At,
    ActorIssuer,
    ActorSub,
    Action,
    Data,
    RequestId,
}

fn seq<T: IntoIden>(postgres: bool, col: T) -> ColumnDef {
    let mut seq = ColumnDef::new(col);
    if postgres {
        seq.big_integer();
    } else {
        // SQLite: only an INTEGER primary key may AUTOINCREMENT.
        seq.integer();
    }
    seq.not_null().auto_increment().primary_key();
    seq
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres;
        use WebhookEndpoint as E;
        manager
            .create_table(
                Table::create()
                    .table(E::Table)
                    .col(ColumnDef::new(E::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(E::PartnershipId).uuid().not_null())
                    .col(ColumnDef::new(E::AgencyId).uuid().null())
                    .col(ColumnDef::new(E::OwnerIssuer).string_len(512).not_null())
                    .col(ColumnDef::new(E::OwnerSub).string_len(256).not_null())
                    .col(ColumnDef::new(E::Url).string_len(2048).not_null())
                    .col(ColumnDef::new(E::Description).string_len(500).not_null())
                    .col(ColumnDef::new(E::EventTypes).string_len(512).not_null())
                    .col(ColumnDef::new(E::Secret).string_len(128).not_null())
                    .col(ColumnDef::new(E::PreviousSecret).string_len(128).null())
                    .col(ColumnDef::new(E::PreviousSecretUntilMs).big_integer().null())
                    .col(ColumnDef::new(E::Enabled).boolean().not_null())
                    .col(ColumnDef::new(E::DisabledReason).string_len(256).null())
                    .col(ColumnDef::new(E::FailingSinceMs).big_integer().null())
                    .col(ColumnDef::new(E::DeletedAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(E::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(E::UpdatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(E::LeaseOwner).uuid().null())
                    .col(ColumnDef::new(E::LeaseUntilMs).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_endpoint_partnership")
                    .table(E::Table)
                    .col(E::PartnershipId)
                    .to_owned(),
            )
            .await?;
        use WebhookDelivery as D;
        manager
            .create_table(
                Table::create()
                    .table(D::Table)
                    .col(seq(postgres, D::Seq))
                    .col(ColumnDef::new(D::Id).uuid().not_null().unique_key())
                    .col(ColumnDef::new(D::EndpointId).uuid().not_null())
                    .col(ColumnDef::new(D::EventId).uuid().not_null())
                    .col(ColumnDef::new(D::EventSeq).big_integer().not_null())
                    .col(ColumnDef::new(D::EventType).string_len(32).not_null())
                    .col(ColumnDef::new(D::CaseId).uuid().not_null())
                    .col(ColumnDef::new(D::Payload).text().not_null())
                    .col(ColumnDef::new(D::State).string_len(16).not_null())
                    .col(ColumnDef::new(D::Step).integer().not_null())
                    .col(ColumnDef::new(D::DueAtMs).big_integer().not_null())
                    .col(ColumnDef::new(D::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(D::CreatedAtMs).big_integer().not_null())
                    .col(ColumnDef::new(D::DeliveredAt).timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create().from(D::Table, D::EndpointId).to(E::Table, E::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_delivery_due")
                    .table(D::Table)
                    .col(D::State)
                    .col(D::EndpointId)
                    .col(D::DueAtMs)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_delivery_endpoint_seq")
                    .table(D::Table)
                    .col(D::EndpointId)
                    .col(D::Seq)
                    .to_owned(),
            )
            .await?;
        use WebhookAttempt as A;
        manager
            .create_table(
                Table::create()
                    .table(A::Table)
                    .col(seq(postgres, A::Seq))
                    .col(ColumnDef::new(A::DeliveryId).uuid().not_null())
                    .col(ColumnDef::new(A::At).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(A::HttpStatus).integer().null())
                    .col(ColumnDef::new(A::LatencyMs).big_integer().not_null())
                    .col(ColumnDef::new(A::Error).string_len(512).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_attempt_delivery")
                    .table(A::Table)
                    .col(A::DeliveryId)
                    .col(A::Seq)
                    .to_owned(),
            )
            .await?;
        use WebhookAudit as U;
        manager
            .create_table(
                Table::create()
                    .table(U::Table)
                    .col(seq(postgres, U::Seq))
                    .col(ColumnDef::new(U::EndpointId).uuid().not_null())
                    .col(ColumnDef::new(U::At).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(U::ActorIssuer).string_len(512).not_null())
                    .col(ColumnDef::new(U::ActorSub).string_len(256).not_null())
                    .col(ColumnDef::new(U::Action).string_len(32).not_null())
                    .col(ColumnDef::new(U::Data).text().not_null())
                    .col(ColumnDef::new(U::RequestId).string_len(128).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebhookAudit::Table.into_iden(),
            WebhookAttempt::Table.into_iden(),
            WebhookDelivery::Table.into_iden(),
            WebhookEndpoint::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
