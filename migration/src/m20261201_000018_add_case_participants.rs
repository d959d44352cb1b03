//! The agencies taking part in a case beyond its two parties (issue 12):
//! a row per participation, from `joinCase` to `leaveCase` (`left_at`
//! null while it takes part), written in the change's transaction. Every
//! read of cases repeats the caller's scope with a subquery on
//! `(agency_id, left_at)`, so the index leads with the agency.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Case {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Agency {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum CaseParticipant {
    Table,
    Id,
    CaseId,
    AgencyId,
    AgencyKind,
    Stage,
    JoinedAt,
    JoinedBySub,
    LeftAt,
    LeftBySub,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use CaseParticipant as P;
        manager
            .create_table(
                Table::create()
                    .table(P::Table)
                    .col(ColumnDef::new(P::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(P::CaseId).uuid().not_null())
                    .col(ColumnDef::new(P::AgencyId).uuid().not_null())
                    .col(ColumnDef::new(P::AgencyKind).string_len(32).not_null())
                    .col(ColumnDef::new(P::Stage).string_len(64).not_null())
                    .col(ColumnDef::new(P::JoinedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(P::JoinedBySub).string_len(255).not_null())
                    .col(ColumnDef::new(P::LeftAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(P::LeftBySub).string_len(255).null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_case_participant_case")
                            .from(P::Table, P::CaseId)
                            .to(Case::Table, Case::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_case_participant_agency")
                            .from(P::Table, P::AgencyId)
                            .to(Agency::Table, Agency::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_case_participant_agency")
                    .table(P::Table)
                    .col(P::AgencyId)
                    .col(P::LeftAt)
                    .col(P::CaseId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_case_participant_case")
                    .table(P::Table)
                    .col(P::CaseId)
                    .col(P::JoinedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(CaseParticipant::Table).to_owned()).await
    }
}
