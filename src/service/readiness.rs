//! What `/readyz` and the start of `serve` say about the data: whether the
//! directory holds a partnership. A server on an empty directory is ready
//! (it answers, and a directory may be loaded while it runs), but no token
//! can name a partnership it knows, so it says so.

use entity::partnership;
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, QuerySelect};

/// What an empty directory is told with: at start (a warning) and in
/// `/readyz`'s body.
pub const EMPTY_DIRECTORY: &str = "the directory is empty: no partnership, so no token is \
     accepted; load one with `escalations directory import FILE` (or the demo's with \
     `escalations seed-demo`)";

/// Whether the directory holds no partnership (one indexed row read at most).
pub async fn directory_is_empty(db: &DatabaseConnection) -> Result<bool, DbErr> {
    let first = partnership::Entity::find()
        .select_only()
        .column(partnership::Column::Id)
        .into_tuple::<uuid::Uuid>()
        .one(db)
        .await?;
    Ok(first.is_none())
}
