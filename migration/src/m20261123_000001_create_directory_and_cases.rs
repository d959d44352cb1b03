//! Partnerships, their agencies, and cases (the professional differences).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Partnership {
    Table,
    Id,
    Code,
    Name,
    ProtocolId,
    Calendar,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Agency {
    Table,
    Id,
    PartnershipId,
    Code,
    Name,
    Kind,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Case {
    Table,
    Id,
    PartnershipId,
    ProtocolId,
    ProtocolVersion,
    Route,
    Stage,
    Status,
    RaisingAgencyId,
    ReceivingAgencyId,
    ChildReference,
    Category,
    Summary,
    Version,
    RaisedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Partnership::Table)
                    .col(ColumnDef::new(Partnership::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Partnership::Code).string_len(64).not_null().unique_key())
                    .col(ColumnDef::new(Partnership::Name).string_len(200).not_null())
                    .col(ColumnDef::new(Partnership::ProtocolId).string_len(64).not_null())
                    .col(ColumnDef::new(Partnership::Calendar).string_len(64).not_null())
                    .col(
                        ColumnDef::new(Partnership::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Agency::Table)
                    .col(ColumnDef::new(Agency::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Agency::PartnershipId).uuid().not_null())
                    .col(ColumnDef::new(Agency::Code).string_len(64).not_null().unique_key())
                    .col(ColumnDef::new(Agency::Name).string_len(200).not_null())
                    .col(ColumnDef::new(Agency::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(Agency::CreatedAt).timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_agency_partnership")
                            .from(Agency::Table, Agency::PartnershipId)
                            .to(Partnership::Table, Partnership::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_agency_partnership")
                    .table(Agency::Table)
                    .col(Agency::PartnershipId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Case::Table)
                    .col(ColumnDef::new(Case::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Case::PartnershipId).uuid().not_null())
                    .col(ColumnDef::new(Case::ProtocolId).string_len(64).not_null())
                    .col(ColumnDef::new(Case::ProtocolVersion).integer().not_null())
                    .col(ColumnDef::new(Case::Route).string_len(64).not_null())
                    .col(ColumnDef::new(Case::Stage).string_len(64).not_null())
                    .col(ColumnDef::new(Case::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Case::RaisingAgencyId).uuid().not_null())
                    .col(ColumnDef::new(Case::ReceivingAgencyId).uuid().not_null())
                    .col(ColumnDef::new(Case::ChildReference).string_len(128).not_null())
                    .col(ColumnDef::new(Case::Category).string_len(64).not_null())
                    .col(ColumnDef::new(Case::Summary).text().not_null())
                    .col(ColumnDef::new(Case::Version).integer().not_null())
                    .col(ColumnDef::new(Case::RaisedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Case::UpdatedAt).timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_case_partnership")
                            .from(Case::Table, Case::PartnershipId)
                            .to(Partnership::Table, Partnership::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_case_raising_agency")
                            .from(Case::Table, Case::RaisingAgencyId)
                            .to(Agency::Table, Agency::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_case_receiving_agency")
                            .from(Case::Table, Case::ReceivingAgencyId)
                            .to(Agency::Table, Agency::Id),
                    )
                    .check(Expr::col(Case::RaisingAgencyId).ne(Expr::col(Case::ReceivingAgencyId)))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_case_raising_agency", Case::RaisingAgencyId),
            ("idx_case_receiving_agency", Case::ReceivingAgencyId),
        ] {
            manager
                .create_index(Index::create().name(name).table(Case::Table).col(col).to_owned())
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_case_partnership_raised")
                    .table(Case::Table)
                    .col(Case::PartnershipId)
                    .col(Case::RaisedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Case::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Agency::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Partnership::Table).to_owned()).await?;
        Ok(())
    }
}
