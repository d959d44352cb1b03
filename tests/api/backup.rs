//! `escalations backup FILE`: a consistent copy of the SQLite database,
//! taken while a server process writes to it, which `audit verify` and a
//! server accept. SQLite only (PostgreSQL is refused: its own tools).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use entity::{case, case_event};
use escalations::domain::role::Role;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use serde_json::json;

use crate::processes::{agency_id, post_ok, start, token};

fn escalations(db_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_escalations"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

async fn open(url: &str) -> DatabaseConnection {
    escalations::db::connect(&escalations::db::DbSettings {
        url: url.to_owned(),
        max_connections: Some(1),
    })
    .await
    .unwrap()
}

async fn cases(db: &DatabaseConnection) -> u64 {
    case::Entity::find().count(db).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_writes_is_a_consistent_prefix_that_audit_verify_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let url = format!("sqlite://{}?mode=rwc", live.display());
    let server = start(&url);
    let client = reqwest::Client::new();
    let practitioner = token(Role::Practitioner, "wb-police");
    let receiving = agency_id(&client, &server.url, &practitioner, "wb-swansea-csc").await;

    // The stream: raise a case, then add a record to it, over and over.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, written, client, url) =
            (stop.clone(), written.clone(), client.clone(), server.url.clone());
        tokio::spawn(async move {
            let raise = "mutation($i: RaiseCaseInput!) { raiseCase(input: $i) { case { id } } }";
            let add = "mutation($i: AddRecordInput!) { addRecord(input: $i) { record { id } } }";
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let vars = json!({ "i": { "receivingAgencyId": receiving, "childReference": format!("BACKUP-{i}"), "category": "other", "summary": "Raised during a backup." } });
                let raised = post_ok(&client, &url, &practitioner, raise, vars).await;
                let id = raised["raiseCase"]["case"]["id"].clone();
                let vars = json!({ "i": { "caseId": id, "kind": "DISCUSSION", "facts": "Written during a backup." } });
                post_ok(&client, &url, &practitioner, add, vars).await;
                i += 1;
                written.store(i, Ordering::SeqCst);
            }
        })
    };
    while written.load(Ordering::SeqCst) < 20 {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // Mid-stream: the counts committed just before and just after the copy.
    let live_db = open(&url).await;
    let copy = dir.path().join("copy.db");
    let before = cases(&live_db).await;
    let out = {
        let (url, copy) = (url.clone(), copy.to_str().unwrap().to_owned());
        tokio::task::spawn_blocking(move || escalations(&url, &["backup", &copy])).await.unwrap()
    };
    let after = cases(&live_db).await;
    let during = written.load(Ordering::SeqCst);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("backed up"), "{}", text(&out));
    // The stream goes on after the copy.
    while written.load(Ordering::SeqCst) < during + 5 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    live_db.close().await.unwrap();

    // Owner-only, like the database it copies.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let copy_url = format!("sqlite://{}?mode=rw", copy.display());
    let out = escalations(&copy_url, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("audit trail intact"), "{}", text(&out));

    // A prefix of the stream: between the counts before and after, and
    // every case in it with its whole chain (one audit event per version,
    // numbered 1..=version).
    let backup = open(&copy_url).await;
    let held = cases(&backup).await;
    assert!((before..=after).contains(&held), "{before} <= {held} <= {after}");
    let mut seqs: std::collections::BTreeMap<uuid::Uuid, Vec<i32>> = Default::default();
    for e in case_event::Entity::find().all(&backup).await.unwrap() {
        seqs.entry(e.case_id).or_default().push(e.seq);
    }
    let all = case::Entity::find().all(&backup).await.unwrap();
    for c in &all {
        let mut got = seqs.remove(&c.id).unwrap_or_default();
        got.sort_unstable();
        assert_eq!(got, (1..=c.version).collect::<Vec<_>>(), "case {}", c.child_reference);
    }
    assert!(seqs.is_empty(), "audit events without their case: {seqs:?}");
    backup.close().await.unwrap();

    // Restored: a server started on the copy serves its cases.
    drop(server);
    let restored = start(&copy_url);
    let chair = crate::helpers::mint(escalations::auth::MintClaims {
        sub: "chair".into(),
        role: Some(Role::BoardChair),
        partnership: "western-bay".into(),
        ..Default::default()
    });
    let data =
        post_ok(&client, &restored.url, &chair, "{ cases(first: 1) { totalCount } }", json!({}))
            .await;
    assert_eq!(data["cases"]["totalCount"], held);
}

#[test]
fn a_backup_never_overwrites_a_file_and_postgresql_is_pointed_to_its_own_tools() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("live.db").display());
    let out = escalations(&url, &["seed-demo"]);
    assert!(out.status.success(), "{}", text(&out));

    let taken = dir.path().join("taken.db");
    std::fs::write(&taken, b"something else").unwrap();
    let out = escalations(&url, &["backup", taken.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("a backup never overwrites a file"), "{}", text(&out));
    assert_eq!(std::fs::read(&taken).unwrap(), b"something else");

    // No database to copy: nothing is created, on either side.
    let missing = format!("sqlite://{}?mode=rwc", dir.path().join("none.db").display());
    let copy = dir.path().join("copy.db");
    let out = escalations(&missing, &["backup", copy.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no SQLite database at"), "{}", text(&out));
    assert!(!dir.path().join("none.db").exists() && !copy.exists());

    let out = escalations("postgres://postgres@127.0.0.1:5432/postgres", &["backup", "x.db"]);
    assert!(!out.status.success());
    for words in ["pg_dump", "pg_basebackup"] {
        assert!(text(&out).contains(words), "{}", text(&out));
    }
}
