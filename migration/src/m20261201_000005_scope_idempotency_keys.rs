//! Idempotency keys scoped by who sent them: the token's issuer and subject,
//! and the partnership and agency it acts for. A key was unique per `sub`
//! alone, so the same `sub` in another partnership or agency could replay
//! another caller's first result.
//!
//! The table is rebuilt (SQLite cannot change a primary key in place) and
//! the keys stored before it are dropped: they are a retry window of
//! minutes, not records, and none can be given a scope after the fact. A
//! retry that straddles the upgrade runs as a new request. `down` restores
//! the old shape, empty, for the same reason.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IdempotencyKey {
    Table,
    Issuer,
    ActorSub,
    PartnershipId,
    AgencyId,
    Key,
    Operation,
    Fingerprint,
    Result,
    CreatedAt,
}

/// The columns both shapes share, after their key columns.
fn rest(table: &mut TableCreateStatement) -> &mut TableCreateStatement {
    table
        .col(ColumnDef::new(IdempotencyKey::Key).string_len(128).not_null())
        .col(ColumnDef::new(IdempotencyKey::Operation).string_len(64).not_null())
        .col(ColumnDef::new(IdempotencyKey::Fingerprint).string_len(64).not_null())
        .col(ColumnDef::new(IdempotencyKey::Result).text().not_null())
        .col(ColumnDef::new(IdempotencyKey::CreatedAt).timestamp_with_time_zone().not_null())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(IdempotencyKey::Table).to_owned()).await?;
        let mut table = Table::create();
        table
            .table(IdempotencyKey::Table)
            .col(ColumnDef::new(IdempotencyKey::Issuer).string_len(256).not_null())
            .col(ColumnDef::new(IdempotencyKey::ActorSub).string_len(256).not_null())
            .col(ColumnDef::new(IdempotencyKey::PartnershipId).uuid().not_null())
            // The nil UUID when the token names no agency: a key column
            // cannot be NULL, and NULLs would not collide in a unique key.
            .col(ColumnDef::new(IdempotencyKey::AgencyId).uuid().not_null());
        rest(&mut table).primary_key(
            Index::create()
                .col(IdempotencyKey::Issuer)
                .col(IdempotencyKey::ActorSub)
                .col(IdempotencyKey::PartnershipId)
                .col(IdempotencyKey::AgencyId)
                .col(IdempotencyKey::Key),
        );
        manager.create_table(table.to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(IdempotencyKey::Table).to_owned()).await?;
        let mut table = Table::create();
        table
            .table(IdempotencyKey::Table)
            .col(ColumnDef::new(IdempotencyKey::ActorSub).string_len(256).not_null());
        rest(&mut table)
            .primary_key(Index::create().col(IdempotencyKey::ActorSub).col(IdempotencyKey::Key));
        manager.create_table(table.to_owned()).await
    }
}
