//! The change frame, driven with changes of the test's own: what a use
//! case writes is kept only with its version and audit event, a refusal
//! after its rows are written leaves nothing, a transient failure is retried
//! whole, and a replayed key does not run the change again.

use std::sync::atomic::{AtomicU32, Ordering};

use entity::{case, case_event, case_record};
use escalations::domain::actor::Actor;
use escalations::domain::catalog::Catalog;
use escalations::domain::ids::{AgencyId, CaseId, PartnershipId};
use escalations::domain::role::Role;
use escalations::service::ServiceError;
use escalations::service::audit::{self, AuditAction};
use escalations::service::change::{About, CaseChange, Ctx, Decided, Frame, Keyed, Target, ready};
use escalations::service::protocols::Library;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, PaginatorTrait};
use serde_json::json;

use crate::db_test;
use crate::helpers::{Backend, TEST_ISSUER, TestApp};

/// How the test change ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Keeps what it wrote.
    Keep,
    /// Refuses after writing its record.
    Refuse,
    /// Meets a PostgreSQL serialization failure on its first attempt.
    FailOnce,
}

/// Adds a record to a case and ends as told; counts its attempts.
#[derive(Debug)]
struct Note<'a> {
    case: CaseId,
    end: End,
    attempts: &'a AtomicU32,
}

impl CaseChange for Note<'_> {
    type Output = uuid::Uuid;

    fn about(&self) -> About<uuid::Uuid> {
        About {
            operation: "testNote",
            action: AuditAction::AddRecord,
            target: Target::case(self.case, None),
        }
    }

    fn fingerprint(&self) -> &dyn std::fmt::Debug {
        &self.case
    }

    async fn decide_and_write(
        &self,
        ctx: &Ctx<'_>,
        row: Option<&case::Model>,
    ) -> Result<Decided<uuid::Uuid>, ServiceError> {
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst);
        let row = row.expect("the frame loads the case");
        let id = uuid::Uuid::now_v7();
        case_record::Entity::insert(case_record::ActiveModel {
            id: Set(id),
            case_id: Set(row.id),
            stage: Set(row.stage.clone()),
            kind: Set("discussion".into()),
            facts: Set("Spoke on the phone.".into()),
            opinions: Set(String::new()),
            attendees: Set("[]".into()),
            corrects_id: Set(None),
            author_sub: Set(ctx.actor.sub.clone()),
            author_agency_id: Set(ctx.actor.acting_agency().map(|a| a.uuid())),
            created_at: Set(ctx.now),
        })
        .exec_without_returning(ctx.txn)
        .await?;
        match self.end {
            End::Refuse => return Err(ServiceError::Conflict("refused after writing".into())),
            End::FailOnce if attempt == 0 => {
                let sql = "DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '40001'; END $$";
                ctx.txn.execute_unprepared(sql).await?;
            }
            _ => {}
        }
        let case = case::Model { updated_at: ctx.now, ..row.clone() };
        Ok(Decided { case, audit: json!({ "record_id": id }), output: ready(id), raises: None })
    }
}

/// A case raised over the API, and the police practitioner who raised it.
async fn raised(app: &TestApp) -> (CaseId, Actor) {
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let csc = app.agency_id("wb-swansea-csc").await;
    let data = app
        .gql_as_ok(
            &token,
            "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id } } }",
            json!({ "input": { "receivingAgencyId": csc, "childReference": "SWP-9", "category": "other", "summary": "Disputed decision." } }),
        )
        .await;
    let id: CaseId = data["raiseCase"]["case"]["id"].as_str().unwrap().parse().unwrap();
    let row = case::Entity::find_by_id(id.uuid()).one(&app.db).await.unwrap().unwrap();
    let actor = Actor {
        issuer: TEST_ISSUER.into(),
        sub: "frame-test".into(),
        role: Some(Role::Practitioner),
        scopes: Default::default(),
        partnership: PartnershipId::from_uuid(row.partnership_id),
        agency: Some(AgencyId::from_uuid(row.raising_agency_id)),
    };
    (id, actor)
}

/// (case version, records, audit events) as stored.
async fn stored(app: &TestApp, id: CaseId) -> (i32, u64, Vec<(i32, String)>) {
    let row = case::Entity::find_by_id(id.uuid()).one(&app.db).await.unwrap().unwrap();
    let records = case_record::Entity::find().count(&app.db).await.unwrap();
    let mut events: Vec<(i32, String)> = case_event::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.action))
        .collect();
    events.sort();
    (row.version, records, events)
}

fn note(case: CaseId, end: End, attempts: &AtomicU32) -> Note<'_> {
    Note { case, end, attempts }
}

db_test!(a_change_keeps_its_rows_with_one_version_and_one_audit_event, |app| {
    let (id, actor) = raised(&app).await;
    let catalog = Library::new(Catalog::builtin().unwrap());
    let frame = Frame { db: &app.db, protocols: &catalog, actor: &actor, request_id: Some("r-1") };
    let attempts = AtomicU32::new(0);
    frame.run(Keyed { key: None, change: note(id, End::Keep, &attempts) }).await.unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    let events = vec![(1, "raise".to_owned()), (2, "add_record".to_owned())];
    assert_eq!(stored(&app, id).await, (2, 1, events));
    assert_eq!(audit::verify(&app.db).await.unwrap(), None);
});

db_test!(a_change_refused_after_writing_its_rows_leaves_nothing, |app| {
    let (id, actor) = raised(&app).await;
    let catalog = Library::new(Catalog::builtin().unwrap());
    let frame = Frame { db: &app.db, protocols: &catalog, actor: &actor, request_id: None };
    let attempts = AtomicU32::new(0);
    let change = Keyed { key: Some("k-1".into()), change: note(id, End::Refuse, &attempts) };
    let err = frame.run(change).await.unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)), "{err:?}");
    assert_eq!(stored(&app, id).await, (1, 0, vec![(1, "raise".to_owned())]));
    // Nor is the key remembered: the same key runs the change again.
    let again = note(id, End::Keep, &attempts);
    frame.run(Keyed { key: Some("k-1".into()), change: again }).await.unwrap();
    assert_eq!(stored(&app, id).await.0, 2);
});

db_test!(a_replayed_key_returns_the_first_result_without_running_the_change, |app| {
    let (id, actor) = raised(&app).await;
    let catalog = Library::new(Catalog::builtin().unwrap());
    let frame = Frame { db: &app.db, protocols: &catalog, actor: &actor, request_id: None };
    let (once, twice) = (AtomicU32::new(0), AtomicU32::new(0));
    let first = frame.run(Keyed { key: Some("k-2".into()), change: note(id, End::Keep, &once) });
    let first = first.await.unwrap();
    let second = frame.run(Keyed { key: Some("k-2".into()), change: note(id, End::Keep, &twice) });
    assert_eq!(second.await.unwrap(), first);
    assert_eq!(twice.load(Ordering::SeqCst), 0, "the replay did not run the change");
    assert_eq!(stored(&app, id).await.0, 2, "one change");
});

/// A real serialization failure (SQLSTATE 40001, raised by PostgreSQL in
/// the change's transaction after its record was written): the frame rolls
/// the attempt back whole and runs it again, so one record, one version and
/// one audit event are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_whole() {
    let Some(app) = crate::helpers::spawn_app(Backend::Postgres).await else { return };
    let (id, actor) = raised(&app).await;
    let catalog = Library::new(Catalog::builtin().unwrap());
    let frame = Frame { db: &app.db, protocols: &catalog, actor: &actor, request_id: None };
    let attempts = AtomicU32::new(0);
    frame.run(Keyed { key: None, change: note(id, End::FailOnce, &attempts) }).await.unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 2, "retried once");
    let events = vec![(1, "raise".to_owned()), (2, "add_record".to_owned())];
    assert_eq!(stored(&app, id).await, (2, 1, events));
    assert_eq!(audit::verify(&app.db).await.unwrap(), None);
}
