//! Migrations apply, roll back and apply again on both backends.

use migration::{Migrator, MigratorTrait};

use crate::db_test;

db_test!(migrations_go_up_down_and_up_again, |app| {
    // The server applied every migration at start.
    let applied = Migrator::get_applied_migrations(&app.db).await.unwrap();
    assert_eq!(applied.len(), Migrator::migrations().len());
    Migrator::down(&app.db, None).await.unwrap();
    assert!(Migrator::get_applied_migrations(&app.db).await.unwrap().is_empty());
    Migrator::up(&app.db, None).await.unwrap();
    assert_eq!(
        Migrator::get_applied_migrations(&app.db).await.unwrap().len(),
        Migrator::migrations().len()
    );
});
