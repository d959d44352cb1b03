//! The append-only audit trail of cases, and the current stage's deadline.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Case {
    Table,
    StageEnteredAt,
    DueOn,
}

#[derive(DeriveIden)]
enum CaseEvent {
    Table,
    Id,
    CaseId,
    Seq,
    At,
    ActorSub,
    ActorRole,
    ActorAgencyId,
    Action,
    RequestId,
    Data,
    PrevHash,
    Hash,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Two statements: SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Case::Table)
                    .add_column(
                        ColumnDef::new(Case::StageEnteredAt).timestamp_with_time_zone().null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Case::Table)
                    .add_column(ColumnDef::new(Case::DueOn).date().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CaseEvent::Table)
                    .col(ColumnDef::new(CaseEvent::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(CaseEvent::CaseId).uuid().not_null())
                    .col(ColumnDef::new(CaseEvent::Seq).integer().not_null())
                    .col(ColumnDef::new(CaseEvent::At).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(CaseEvent::ActorSub).string_len(256).not_null())
                    .col(ColumnDef::new(CaseEvent::ActorRole).string_len(32).null())
                    .col(ColumnDef::new(CaseEvent::ActorAgencyId).uuid().null())
                    .col(ColumnDef::new(CaseEvent::Action).string_len(32).not_null())
                    .col(ColumnDef::new(CaseEvent::RequestId).string_len(128).null())
                    .col(ColumnDef::new(CaseEvent::Data).text().not_null())
                    .col(ColumnDef::new(CaseEvent::PrevHash).string_len(64).not_null())
                    .col(ColumnDef::new(CaseEvent::Hash).string_len(64).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_case_event_case")
                            .from(CaseEvent::Table, CaseEvent::CaseId)
                            .to(Case::Table, Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        // One event per sequence number per case: two concurrent writers of
        // one case cannot both append the same step.
        manager
            .create_index(
                Index::create()
                    .name("ux_case_event_case_seq")
                    .table(CaseEvent::Table)
                    .col(CaseEvent::CaseId)
                    .col(CaseEvent::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(CaseEvent::Table).to_owned()).await?;
        manager
            .alter_table(Table::alter().table(Case::Table).drop_column(Case::DueOn).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter().table(Case::Table).drop_column(Case::StageEnteredAt).to_owned(),
            )
            .await?;
        Ok(())
    }
}
