//! Records of discussions, agencies' views, agreed actions, the log of who
//! read a case's free text, and idempotency keys of mutations.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Case {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum CaseRecord {
    Table,
    Id,
    CaseId,
    Stage,
    Kind,
    Facts,
    Opinions,
    Attendees,
    CorrectsId,
    AuthorSub,
    AuthorAgencyId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AgencyView {
    Table,
    Id,
    CaseId,
    AgencyId,
    Stage,
    View,
    AuthorSub,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AgreedAction {
    Table,
    Id,
    CaseId,
    Stage,
    Description,
    OwnerAgencyId,
    DueOn,
    AuthorSub,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AccessLog {
    Table,
    Id,
    CaseId,
    ActorSub,
    ActorAgencyId,
    What,
    RequestId,
    At,
}

#[derive(DeriveIden)]
enum IdempotencyKey {
    Table,
    ActorSub,
    Key,
    Operation,
    Fingerprint,
    Result,
    CreatedAt,
}

fn case_fk(
    table: impl IntoIden + 'static,
    col: impl IntoIden + 'static,
    name: &str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create().name(name).from(table, col).to(Case::Table, Case::Id).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CaseRecord::Table)
                    .col(ColumnDef::new(CaseRecord::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(CaseRecord::CaseId).uuid().not_null())
                    .col(ColumnDef::new(CaseRecord::Stage).string_len(64).not_null())
                    .col(ColumnDef::new(CaseRecord::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(CaseRecord::Facts).text().not_null())
                    .col(ColumnDef::new(CaseRecord::Opinions).text().not_null())
                    .col(ColumnDef::new(CaseRecord::Attendees).text().not_null())
                    .col(ColumnDef::new(CaseRecord::CorrectsId).uuid().null())
                    .col(ColumnDef::new(CaseRecord::AuthorSub).string_len(256).not_null())
                    .col(ColumnDef::new(CaseRecord::AuthorAgencyId).uuid().null())
                    .col(
                        ColumnDef::new(CaseRecord::CreatedAt).timestamp_with_time_zone().not_null(),
                    )
                    .foreign_key(&mut case_fk(
                        CaseRecord::Table,
                        CaseRecord::CaseId,
                        "fk_case_record_case",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AgencyView::Table)
                    .col(ColumnDef::new(AgencyView::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(AgencyView::CaseId).uuid().not_null())
                    .col(ColumnDef::new(AgencyView::AgencyId).uuid().not_null())
                    .col(ColumnDef::new(AgencyView::Stage).string_len(64).not_null())
                    .col(ColumnDef::new(AgencyView::View).text().not_null())
                    .col(ColumnDef::new(AgencyView::AuthorSub).string_len(256).not_null())
                    .col(
                        ColumnDef::new(AgencyView::CreatedAt).timestamp_with_time_zone().not_null(),
                    )
                    .foreign_key(&mut case_fk(
                        AgencyView::Table,
                        AgencyView::CaseId,
                        "fk_agency_view_case",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AgreedAction::Table)
                    .col(ColumnDef::new(AgreedAction::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(AgreedAction::CaseId).uuid().not_null())
                    .col(ColumnDef::new(AgreedAction::Stage).string_len(64).not_null())
                    .col(ColumnDef::new(AgreedAction::Description).text().not_null())
                    .col(ColumnDef::new(AgreedAction::OwnerAgencyId).uuid().not_null())
                    .col(ColumnDef::new(AgreedAction::DueOn).date().not_null())
                    .col(ColumnDef::new(AgreedAction::AuthorSub).string_len(256).not_null())
                    .col(
                        ColumnDef::new(AgreedAction::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(&mut case_fk(
                        AgreedAction::Table,
                        AgreedAction::CaseId,
                        "fk_agreed_action_case",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AccessLog::Table)
                    .col(ColumnDef::new(AccessLog::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(AccessLog::CaseId).uuid().not_null())
                    .col(ColumnDef::new(AccessLog::ActorSub).string_len(256).not_null())
                    .col(ColumnDef::new(AccessLog::ActorAgencyId).uuid().null())
                    .col(ColumnDef::new(AccessLog::What).string_len(32).not_null())
                    .col(ColumnDef::new(AccessLog::RequestId).string_len(128).null())
                    .col(ColumnDef::new(AccessLog::At).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKey::Table)
                    .col(ColumnDef::new(IdempotencyKey::ActorSub).string_len(256).not_null())
                    .col(ColumnDef::new(IdempotencyKey::Key).string_len(128).not_null())
                    .col(ColumnDef::new(IdempotencyKey::Operation).string_len(64).not_null())
                    .col(ColumnDef::new(IdempotencyKey::Fingerprint).string_len(64).not_null())
                    .col(ColumnDef::new(IdempotencyKey::Result).text().not_null())
                    .col(
                        ColumnDef::new(IdempotencyKey::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create().col(IdempotencyKey::ActorSub).col(IdempotencyKey::Key),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, table, col) in [
            ("idx_case_record_case", CaseRecord::Table.into_iden(), CaseRecord::CaseId.into_iden()),
            ("idx_agency_view_case", AgencyView::Table.into_iden(), AgencyView::CaseId.into_iden()),
            (
                "idx_agreed_action_case",
                AgreedAction::Table.into_iden(),
                AgreedAction::CaseId.into_iden(),
            ),
            ("idx_access_log_case", AccessLog::Table.into_iden(), AccessLog::CaseId.into_iden()),
        ] {
            manager
                .create_index(Index::create().name(name).table(table).col(col).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyKey::Table.into_iden(),
            AccessLog::Table.into_iden(),
            AgreedAction::Table.into_iden(),
            AgencyView::Table.into_iden(),
            CaseRecord::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
