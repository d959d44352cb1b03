//! One published version of a protocol, kept exactly as published and
//! never edited or deleted (see `service::protocols`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "protocol_version")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub protocol_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    /// The partnership that published it; null for the built-in library.
    pub partnership_id: Option<Uuid>,
    /// The TOML definition, byte for byte as published.
    #[sea_orm(column_type = "Text")]
    pub definition: String,
    /// The SHA-256 of `definition`, lowercase hex.
    pub sha256: String,
    pub published_at: DateTimeUtc,
    /// The publishing client's `sub`, `cli:<user>` or `builtin`.
    pub published_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
