//! Structured feedback on a closed case: each of its two agencies may give
//! it once.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Case {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Feedback {
    Table,
    Id,
    CaseId,
    AgencyId,
    Resolved,
    FeltDurationRating,
    WouldUseAgain,
    Comment,
    AuthorSub,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Feedback::Table)
                    .col(ColumnDef::new(Feedback::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Feedback::CaseId).uuid().not_null())
                    .col(ColumnDef::new(Feedback::AgencyId).uuid().not_null())
                    .col(ColumnDef::new(Feedback::Resolved).boolean().not_null())
                    .col(ColumnDef::new(Feedback::FeltDurationRating).integer().null())
                    .col(ColumnDef::new(Feedback::WouldUseAgain).boolean().not_null())
                    .col(ColumnDef::new(Feedback::Comment).text().null())
                    .col(ColumnDef::new(Feedback::AuthorSub).string_len(256).not_null())
                    .col(ColumnDef::new(Feedback::CreatedAt).timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_feedback_case")
                            .from(Feedback::Table, Feedback::CaseId)
                            .to(Case::Table, Case::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // Once per agency per case; also the index of the join from cases.
        manager
            .create_index(
                Index::create()
                    .name("uq_feedback_case_agency")
                    .table(Feedback::Table)
                    .col(Feedback::CaseId)
                    .col(Feedback::AgencyId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Feedback::Table).to_owned()).await
    }
}
