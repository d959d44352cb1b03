//! The directory as a deployment keeps it (issue 15): an agency can be
//! deactivated (never deleted: its cases and history stay) and every change
//! to a partnership or an agency, by `escalations directory import` or by a
//! `directory:admin` client over GraphQL, is a row of `directory_change`:
//! who, when, what, and the values before and after. Rows are only ever
//! appended.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Agency {
    Table,
    Active,
    DeactivatedAt,
}

#[derive(DeriveIden)]
enum DirectoryChange {
    Table,
    Id,
    At,
    ActorSub,
    PartnershipId,
    AgencyId,
    Action,
    Data,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        let columns = [
            ColumnDef::new(Agency::Active).boolean().not_null().default(true).to_owned(),
            ColumnDef::new(Agency::DeactivatedAt).timestamp_with_time_zone().null().to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(Table::alter().table(Agency::Table).add_column(&mut column).to_owned())
                .await?;
        }
        use DirectoryChange as D;
        manager
            .create_table(
                Table::create()
                    .table(D::Table)
                    .col(ColumnDef::new(D::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(D::At).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(D::ActorSub).string_len(255).not_null())
                    .col(ColumnDef::new(D::PartnershipId).uuid().not_null())
                    .col(ColumnDef::new(D::AgencyId).uuid().null())
                    .col(ColumnDef::new(D::Action).string_len(64).not_null())
                    .col(ColumnDef::new(D::Data).text().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_directory_change_partnership")
                    .table(D::Table)
                    .col(D::PartnershipId)
                    .col(D::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(DirectoryChange::Table).to_owned()).await?;
        for column in [Agency::DeactivatedAt, Agency::Active] {
            manager
                .alter_table(Table::alter().table(Agency::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
