//! Who each open case waits on (issue 13): a row per party and role that
//! must act next (`domain::awaiting`), written by the change frame in each
//! change's transaction (the case's rows replaced), so that a person's
//! queue (`myQueue`) is one indexed read: by partnership, agency (null for
//! the board) and role, soonest due first.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Case {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Awaiting {
    Table,
    CaseId,
    Party,
    Role,
    PartnershipId,
    AgencyId,
    Milestone,
    DueOn,
    SortMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Awaiting::Table)
                    .col(ColumnDef::new(Awaiting::CaseId).uuid().not_null())
                    .col(ColumnDef::new(Awaiting::Party).string_len(16).not_null())
                    .col(ColumnDef::new(Awaiting::Role).string_len(32).not_null())
                    .col(ColumnDef::new(Awaiting::PartnershipId).uuid().not_null())
                    .col(ColumnDef::new(Awaiting::AgencyId).uuid().null())
                    .col(ColumnDef::new(Awaiting::Milestone).string_len(64).null())
                    .col(ColumnDef::new(Awaiting::DueOn).date().null())
                    .col(ColumnDef::new(Awaiting::SortMs).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(Awaiting::CaseId)
                            .col(Awaiting::Party)
                            .col(Awaiting::Role),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_awaiting_case")
                            .from(Awaiting::Table, Awaiting::CaseId)
                            .to(Case::Table, Case::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_awaiting_queue")
                    .table(Awaiting::Table)
                    .col(Awaiting::PartnershipId)
                    .col(Awaiting::AgencyId)
                    .col(Awaiting::Role)
                    .col(Awaiting::SortMs)
                    .col(Awaiting::CaseId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Awaiting::Table).to_owned()).await
    }
}
