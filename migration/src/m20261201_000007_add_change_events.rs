//! The event log: one row for every change to a case, ids and states only
//! (never free text), for the change feed. Append-only.
//!
//! `seq` is the order of commit: events are appended one transaction at a
//! time (see `service::events`), so the feed can follow it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ChangeEvent {
    Table,
    Seq,
    Id,
    Type,
    CaseId,
    PartnershipId,
    RaisingAgencyId,
    ReceivingAgencyId,
    StageBefore,
    StageAfter,
    Status,
    CaseVersion,
    At,
    RequestId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres;
        let mut seq = ColumnDef::new(ChangeEvent::Seq);
        if postgres {
            seq.big_integer();
        } else {
            // SQLite: only an INTEGER primary key may AUTOINCREMENT.
            seq.integer();
        }
        seq.not_null().auto_increment().primary_key();
        manager
            .create_table(
                Table::create()
                    .table(ChangeEvent::Table)
                    .col(&mut seq)
                    .col(ColumnDef::new(ChangeEvent::Id).uuid().not_null().unique_key())
                    .col(ColumnDef::new(ChangeEvent::Type).string_len(32).not_null())
                    .col(ColumnDef::new(ChangeEvent::CaseId).uuid().not_null())
                    .col(ColumnDef::new(ChangeEvent::PartnershipId).uuid().not_null())
                    .col(ColumnDef::new(ChangeEvent::RaisingAgencyId).uuid().not_null())
                    .col(ColumnDef::new(ChangeEvent::ReceivingAgencyId).uuid().not_null())
                    .col(ColumnDef::new(ChangeEvent::StageBefore).string_len(64).null())
                    .col(ColumnDef::new(ChangeEvent::StageAfter).string_len(64).not_null())
                    .col(ColumnDef::new(ChangeEvent::Status).string_len(16).not_null())
                    .col(ColumnDef::new(ChangeEvent::CaseVersion).integer().not_null())
                    .col(ColumnDef::new(ChangeEvent::At).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(ChangeEvent::RequestId).string_len(128).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("change_event_case_seq")
                    .table(ChangeEvent::Table)
                    .col(ChangeEvent::CaseId)
                    .col(ChangeEvent::Seq)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ChangeEvent::Table).to_owned()).await
    }
}
