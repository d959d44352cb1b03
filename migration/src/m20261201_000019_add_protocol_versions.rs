//! Protocols as data the partnership owns (issue 15): a row per published
//! protocol version, its definition kept exactly as published with its
//! SHA-256, who published it and when; a built-in version (one of the five
//! seed files) has no partnership and is published by `builtin`. A
//! published version is never edited or deleted: no API does it, and a
//! trigger on each backend refuses `UPDATE` and `DELETE` of a row (and, on
//! PostgreSQL, `TRUNCATE` of the table).
//!
//! `partnership.protocol_version` is the version a partnership has adopted
//! for its new cases; null means its protocol's newest.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Partnership {
    Table,
    Id,
    ProtocolVersion,
}

#[derive(DeriveIden)]
enum ProtocolVersion {
    Table,
    ProtocolId,
    Version,
    PartnershipId,
    Definition,
    Sha256,
    PublishedAt,
    PublishedBy,
}

const SQLITE_TRIGGERS: [&str; 2] = [
    "CREATE TRIGGER protocol_version_no_update BEFORE UPDATE ON protocol_version \
     BEGIN SELECT RAISE(ABORT, 'a published protocol version is never edited'); END",
    "CREATE TRIGGER protocol_version_no_delete BEFORE DELETE ON protocol_version \
     BEGIN SELECT RAISE(ABORT, 'a published protocol version is never deleted'); END",
];

const POSTGRES_TRIGGERS: [&str; 3] = [
    "CREATE FUNCTION protocol_version_immutable() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN RAISE EXCEPTION 'a published protocol version is never edited or deleted'; END $$",
    "CREATE TRIGGER protocol_version_immutable BEFORE UPDATE OR DELETE ON protocol_version \
     FOR EACH ROW EXECUTE FUNCTION protocol_version_immutable()",
    "CREATE TRIGGER protocol_version_no_truncate BEFORE TRUNCATE ON protocol_version \
     FOR EACH STATEMENT EXECUTE FUNCTION protocol_version_immutable()",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ProtocolVersion as V;
        manager
            .create_table(
                Table::create()
                    .table(V::Table)
                    .col(ColumnDef::new(V::ProtocolId).string_len(64).not_null())
                    .col(ColumnDef::new(V::Version).integer().not_null())
                    .col(ColumnDef::new(V::PartnershipId).uuid().null())
                    .col(ColumnDef::new(V::Definition).text().not_null())
                    .col(ColumnDef::new(V::Sha256).string_len(64).not_null())
                    .col(ColumnDef::new(V::PublishedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(V::PublishedBy).string_len(255).not_null())
                    .primary_key(Index::create().col(V::ProtocolId).col(V::Version))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_protocol_version_partnership")
                            .from(V::Table, V::PartnershipId)
                            .to(Partnership::Table, Partnership::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Partnership::Table)
                    .add_column(ColumnDef::new(Partnership::ProtocolVersion).integer().null())
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let statements: &[&str] = match db.get_database_backend() {
            DatabaseBackend::Sqlite => &SQLITE_TRIGGERS,
            _ => &POSTGRES_TRIGGERS,
        };
        for sql in statements {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Partnership::Table)
                    .drop_column(Partnership::ProtocolVersion)
                    .to_owned(),
            )
            .await?;
        // Dropping the table drops its triggers; the function stays on
        // PostgreSQL unless dropped after it.
        manager.drop_table(Table::drop().table(ProtocolVersion::Table).to_owned()).await?;
        let db = manager.get_connection();
        if db.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared("DROP FUNCTION IF EXISTS protocol_version_immutable()").await?;
        }
        Ok(())
    }
}
