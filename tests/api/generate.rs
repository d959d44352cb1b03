//! `seed-demo --cases N`: the data generator, run as the binary on both
//! databases, its rows checked behind it with SeaORM.

use std::collections::BTreeMap;

use entity::{agency, case, case_event, change_event, partnership};
use escalations::domain::catalog::Catalog;
use sea_orm::{ColumnTrait, Database, EntityTrait, PaginatorTrait, QueryFilter};

use crate::helpers::{Backend, TestDb};

async fn escalations(db_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_escalations"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Generates 500 cases and checks them against the directory and the
/// protocols; returns the database for more.
async fn generate_500(backend: Backend) -> Option<TestDb> {
    let test_db = TestDb::create(backend).await?;
    let url = test_db.url().to_owned();
    let (ok, out, err) =
        escalations(&url, &["seed-demo", "--cases", "500", "--batch-size", "120"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("5 partnerships"), "{out}");
    assert!(out.contains("generated 500 cases with "), "{out}");

    let db = Database::connect(url.as_str()).await.unwrap();
    let catalog = Catalog::builtin().unwrap();
    let partnerships: BTreeMap<_, _> = partnership::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let agencies: BTreeMap<_, _> =
        agency::Entity::find().all(&db).await.unwrap().into_iter().map(|a| (a.id, a)).collect();
    let cases = case::Entity::find().all(&db).await.unwrap();
    assert_eq!(cases.len(), 500);

    let today = chrono::Utc::now().date_naive();
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_partnership: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut overdue, mut above_first, mut versions) = (0, 0, 0);
    for c in &cases {
        let p = &partnerships[&c.partnership_id];
        let (raising, receiving) =
            (&agencies[&c.raising_agency_id], &agencies[&c.receiving_agency_id]);
        assert_ne!(c.raising_agency_id, c.receiving_agency_id);
        assert_eq!(raising.partnership_id, c.partnership_id, "{}", c.child_reference);
        assert_eq!(receiving.partnership_id, c.partnership_id, "{}", c.child_reference);
        assert_eq!(c.protocol_id, p.protocol_id);
        let protocol = catalog
            .get(&c.protocol_id, u32::try_from(c.protocol_version).unwrap())
            .expect("a known protocol version");
        let route = protocol.route(&c.route).expect("a route of the protocol");
        let kind = escalations::domain::agency::AgencyKind::parse(&receiving.kind).unwrap();
        assert!(route.admits_receiving(kind), "{} raised with {kind}", c.route);
        let at = route.position(&c.stage).expect("a stage of the case's route");
        if at > 0 {
            above_first += 1;
        }
        assert!(protocol.category(&c.category).is_some(), "{}", c.category);
        assert!(c.child_reference.starts_with("GEN-"), "{}", c.child_reference);
        assert!(c.raised_at <= c.updated_at);
        assert!(c.stage_entered_at.is_some_and(|s| c.raised_at <= s && s <= c.updated_at));
        match c.status.as_str() {
            "open" => {
                assert_eq!(c.stage_entered_at, Some(c.updated_at));
                if c.due_on.is_some_and(|d| d < today) {
                    overdue += 1;
                }
            }
            "resolved" | "withdrawn" => assert_eq!(c.due_on, None),
            other => panic!("unknown status {other}"),
        }
        *by_status.entry(c.status.as_str()).or_default() += 1;
        *by_partnership.entry(p.code.as_str()).or_default() += 1;
        versions += u64::try_from(c.version).unwrap();
    }
    // 70% resolved, 10% withdrawn, 20% open, within sampling noise.
    let share = |s: &str| by_status.get(s).copied().unwrap_or(0) as f64 / 500.0;
    assert!((0.62..0.78).contains(&share("resolved")), "{by_status:?}");
    assert!((0.05..0.16).contains(&share("withdrawn")), "{by_status:?}");
    assert!((0.13..0.27).contains(&share("open")), "{by_status:?}");
    assert_eq!(by_partnership.len(), 5, "{by_partnership:?}");
    assert!(overdue > 0, "no open case is overdue");
    assert!(above_first > 0 && above_first < 250, "{above_first} cases above the first stage");
    // Each case's version is the number of its audit events.
    assert_eq!(case_event::Entity::find().count(&db).await.unwrap(), versions);
    // And each has the change event of each change, the last at its version.
    assert_eq!(change_event::Entity::find().count(&db).await.unwrap(), versions);
    let raised = change_event::Entity::find()
        .filter(change_event::Column::Kind.eq("CASE_RAISED"))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(raised, 500);
    db.close().await.unwrap();

    let (ok, out, err) = escalations(&url, &["audit", "verify"]).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "audit trail intact");
    Some(test_db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_demo_generates_valid_cases_on_sqlite() {
    let test_db = generate_500(Backend::Sqlite).await.unwrap();
    // A second run adds more cases, numbered on.
    let url = test_db.url().to_owned();
    let (ok, out, err) = escalations(&url, &["seed-demo", "--cases", "20"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("0 partnerships and 0 agencies added"), "{out}");
    assert!(out.contains("generated 20 cases"), "{out}");
    let db = Database::connect(url.as_str()).await.unwrap();
    let mut refs: Vec<String> = case::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.child_reference)
        .collect();
    refs.sort();
    assert_eq!(refs.len(), 520);
    assert_eq!(refs.first().map(String::as_str), Some("GEN-000001"));
    assert_eq!(refs.last().map(String::as_str), Some("GEN-000520"));
    db.close().await.unwrap();
    let (ok, out, _) = escalations(&url, &["audit", "verify"]).await;
    assert!(ok && out.contains("audit trail intact"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_demo_generates_valid_cases_on_postgres() {
    generate_500(Backend::Postgres).await;
}
