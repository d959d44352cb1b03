//! Webhooks over real HTTP: every delivery verified by the official
//! Standard Webhooks library of another language (PyPI `standardwebhooks`,
//! in `tests/webhooks/receiver.py`), retries on the schedule, failure and
//! redelivery, the address rules, scoping, management and its audit, and
//! two server processes on one PostgreSQL delivering each event once per
//! endpoint, in event order.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use escalations::config::ServeArgs;
use escalations::domain::role::Role;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Mutex;

use crate::helpers::{Backend, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, TestApp, TestDb, mint};
use crate::processes::{agency_id, post_ok as post};
use crate::{db_test, db_test_with};

const CREATE: &str = "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret endpoint { id url enabled eventTypes agencyId } } }";
const DELIVERIES: &str = "query($id: ID!) { webhookDeliveries(endpointId: $id, first: 20) { nodes { id eventId eventType caseId state nextAttemptAt deliveredAt attempts { at httpStatus latencyMs error } } } }";
const REDELIVER: &str =
    "mutation($id: ID!) { redeliverWebhook(input: { deliveryId: $id }) { delivery { id state } } }";
const RAISE: &str =
    "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id version } } }";
const FEED: &str = "query($id: ID) { caseEvents(first: 100, filter: { caseId: $id }) { nodes { id type caseId partnershipId raisingAgencyId receivingAgencyId stageBefore stageAfter status version requestId } } }";

/// The Python interpreter with `standardwebhooks`: `PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A receiver process (see `tests/webhooks/receiver.py`) and what it saw.
struct Receiver {
    _child: tokio::process::Child,
    port: u16,
    dir: tempfile::TempDir,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    /// Starts one; `None` (the test skips) only when the library is
    /// missing outside CI. Under CI a missing library fails the test.
    async fn start() -> Option<Receiver> {
        let check =
            std::process::Command::new(python()).args(["-c", "import standardwebhooks"]).output();
        if !check.as_ref().is_ok_and(|o| o.status.success()) {
            if std::env::var_os("CI").is_some() {
                panic!("CI is set and {} cannot import standardwebhooks: {check:?}", python());
            }
            eprintln!(
                "SKIPPED: {} cannot import standardwebhooks (pip install standardwebhooks)",
                python()
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/receiver.py");
        let mut child = tokio::process::Command::new(python())
            .arg(script)
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the receiver did not start")
            .unwrap()
            .unwrap();
        let port = serde_json::from_str::<Value>(&first).unwrap()["port"].as_u64().unwrap() as u16;
        let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().await.push(serde_json::from_str(&line).unwrap());
            }
        });
        Some(Receiver { _child: child, port, dir, seen })
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }

    /// The secrets `name`'s requests are verified with, in order.
    fn secrets(&self, name: &str, secrets: &[&str]) {
        std::fs::write(self.dir.path().join(format!("{name}.secret")), secrets.join("\n")).unwrap();
    }

    /// Answer 503 to `name`'s next requests: `"all"` or a number.
    fn fail(&self, name: &str, how: &str) {
        std::fs::write(self.dir.path().join(format!("{name}.fail")), how).unwrap();
    }

    fn heal(&self, name: &str) {
        let _ = std::fs::remove_file(self.dir.path().join(format!("{name}.fail")));
    }

    async fn requests(&self, name: &str) -> Vec<Value> {
        self.seen.lock().await.iter().filter(|r| r["path"] == name).cloned().collect()
    }

    /// `name`'s requests once there are `n` (fails after 20 s).
    async fn wait_for(&self, name: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.requests(name).await;
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "{name}: {} of {n} requests: {got:#?}", got.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Default webhook settings, without the cost rate limit (the tests poll
/// `webhookDeliveries`).
fn polling() -> ServeArgs {
    let mut serve = crate::helpers::serve_args();
    serve.rate_limits.rate_limit_cost = "off".parse().unwrap();
    serve
}

/// Settings of a test server: loopback receivers allowed, a short retry
/// schedule, a short poll.
fn fast() -> ServeArgs {
    let mut serve = polling();
    serve.webhooks.webhook_allow_private_addresses = true;
    serve.webhooks.webhook_retry_schedule = "100ms,200ms".parse().unwrap();
    serve.webhooks.webhook_poll_interval = Duration::from_millis(100);
    serve.webhooks.webhook_timeout = Duration::from_secs(5);
    serve
}

fn manager(app: &TestApp, agency: &str) -> String {
    app.client_token("webhooks:manage", Some(agency), "western-bay")
}

/// Creates an endpoint; returns its id and secret.
async fn create(app: &TestApp, token: &str, url: &str, types: Value) -> (String, String) {
    let data = app
        .gql_as_ok(
            token,
            CREATE,
            json!({ "i": { "url": url, "eventTypes": types, "description": "test" } }),
        )
        .await;
    let made = &data["createWebhookEndpoint"];
    (
        made["endpoint"]["id"].as_str().unwrap().to_owned(),
        made["secret"].as_str().unwrap().to_owned(),
    )
}

async fn raise(app: &TestApp, child: &str) -> String {
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;
    let data = app
        .gql_as_ok(&token, RAISE, json!({ "input": { "receivingAgencyId": receiving, "childReference": child, "category": "referral-response", "summary": "Disputed decision about the referral." } }))
        .await;
    data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned()
}

async fn deliveries(app: &TestApp, token: &str, endpoint: &str) -> Vec<Value> {
    let data = app.gql_as_ok(token, DELIVERIES, json!({ "id": endpoint })).await;
    data["webhookDeliveries"]["nodes"].as_array().unwrap().clone()
}

/// The deliveries of `endpoint` once `done` holds of them (20 s at most).
async fn wait_deliveries(
    app: &TestApp,
    token: &str,
    endpoint: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = deliveries(app, token, endpoint).await;
        if done(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "deliveries never got there: {got:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn statuses(d: &Value) -> Vec<Value> {
    d["attempts"].as_array().unwrap().iter().map(|a| a["httpStatus"].clone()).collect()
}

db_test_with!(
    every_delivery_verifies_with_the_standard_webhooks_library_and_shows_the_feed_event,
    fast(),
    |app| {
        let Some(rx) = Receiver::start().await else { return };
        let police = manager(&app, "wb-police");
        let csc = manager(&app, "wb-swansea-csc");
        // A cases:read client of an agency that is no party to the case.
        let health =
            app.client_token("webhooks:manage cases:read", Some("wb-health"), "western-bay");
        let (police_ep, police_secret) = create(&app, &police, &rx.url("police"), json!([])).await;
        let (_, csc_secret) = create(&app, &csc, &rx.url("csc"), json!(["CASE_ESCALATED"])).await;
        let (health_ep, health_secret) = create(&app, &health, &rx.url("health"), json!([])).await;
        assert!(police_secret.starts_with("whsec_"), "{police_secret}");
        rx.secrets("police", &[&police_secret]);
        rx.secrets("csc", &[&csc_secret]);
        rx.secrets("health", &[&health_secret]);

        let case = raise(&app, "WH-0001").await;
        let lead = app.token(Role::Manager, Some("wb-police"), "western-bay");
        app.gql_as_ok(
            &lead,
            "mutation($i: EscalateCaseInput!) { escalateCase(input: $i) { case { stage } } }",
            json!({ "i": { "caseId": case, "reason": "UNRESOLVED" } }),
        )
        .await;
        app.gql_as_ok(
            &lead,
            "mutation($i: ResolveCaseInput!) { resolveCase(input: $i) { case { status } } }",
            json!({ "i": { "caseId": case, "outcome": "Agreed a joint visit." } }),
        )
        .await;

        let got = rx.wait_for("police", 3).await;
        let csc_got = rx.wait_for("csc", 1).await;
        // Every request verified with the endpoint's secret and was answered 2xx.
        for r in got.iter().chain(&csc_got) {
            assert_eq!(r["verified"], json!([0]), "{r:#}");
            assert_eq!(r["status"], 204, "{r:#}");
        }
        // The body is the feed's event: same ids, same order, same fields.
        let reader = app.client_token("cases:read", Some("wb-police"), "western-bay");
        let feed = app.gql_as_ok(&reader, FEED, json!({ "id": case })).await;
        let events = feed["caseEvents"]["nodes"].as_array().unwrap();
        assert_eq!(events.len(), 3);
        for (event, request) in events.iter().zip(&got) {
            assert_eq!(request["id"], event["id"], "webhook-id is the event's id");
            let data = &request["body"]["data"];
            for field in [
                "id",
                "type",
                "caseId",
                "partnershipId",
                "raisingAgencyId",
                "receivingAgencyId",
                "stageBefore",
                "stageAfter",
                "status",
                "version",
                "requestId",
            ] {
                assert_eq!(data[field], event[field], "{field}: {request:#}");
            }
            assert_eq!(request["body"]["type"], event["type"]);
            let text = request["body"].to_string();
            assert!(
                !text.contains("WH-0001")
                    && !text.contains("Disputed")
                    && !text.contains("joint visit"),
                "free text leaked: {text}"
            );
        }
        assert_eq!(csc_got[0]["body"]["type"], "CASE_ESCALATED", "only the types asked for");
        // Each delivery: delivered on its first attempt, its status and latency kept.
        let list = deliveries(&app, &police, &police_ep).await;
        assert_eq!(list.len(), 3);
        for d in &list {
            assert_eq!(d["state"], "DELIVERED", "{d:#}");
            assert_eq!(statuses(d), vec![json!(204)]);
            assert!(d["attempts"][0]["latencyMs"].as_i64().unwrap() >= 0);
            assert!(d["attempts"][0]["error"].is_null());
            assert!(d["nextAttemptAt"].is_null() && d["deliveredAt"].is_string());
        }
        // An agency that is no party to the case hears nothing of it.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(rx.requests("health").await.is_empty());
        assert!(deliveries(&app, &health, &health_ep).await.is_empty());
        assert_eq!(rx.requests("csc").await.len(), 1, "one CASE_ESCALATED, nothing else");
        // Another agency's endpoint is not found for the police's client.
        let err = app.gql_as_err(&police, DELIVERIES, json!({ "id": health_ep })).await;
        assert_eq!(err["extensions"]["code"], "NOT_FOUND");
        // /metrics: deliveries by outcome, and the outbox's age.
        let text = app.metrics().await;
        assert!(
            text.contains("escalations_webhook_deliveries_total{outcome=\"delivered\"} 4"),
            "{text}"
        );
        assert!(text.contains("escalations_webhook_outbox_pending 0"), "{text}");
        assert!(text.contains("escalations_webhook_outbox_oldest_pending_seconds 0"), "{text}");
    }
);

db_test_with!(a_receiver_that_fails_twice_gets_the_third_attempt, fast(), |app| {
    let Some(rx) = Receiver::start().await else { return };
    let police = manager(&app, "wb-police");
    let (ep, secret) = create(&app, &police, &rx.url("flaky"), json!([])).await;
    rx.secrets("flaky", &[&secret]);
    rx.fail("flaky", "2");
    raise(&app, "WH-0002").await;
    let got = rx.wait_for("flaky", 3).await;
    let ids: HashSet<&Value> = got.iter().map(|r| &r["id"]).collect();
    assert_eq!(ids.len(), 1, "the same webhook-id on every attempt");
    assert_eq!(
        got.iter().map(|r| r["status"].as_i64().unwrap()).collect::<Vec<_>>(),
        [503, 503, 204]
    );
    for r in &got {
        assert_eq!(r["verified"], json!([0]), "each attempt is signed afresh: {r:#}");
    }
    let list = wait_deliveries(&app, &police, &ep, |d| {
        d.first().is_some_and(|d| d["state"] == "DELIVERED")
    })
    .await;
    assert_eq!(statuses(&list[0]), [json!(503), json!(503), json!(204)]);
    assert_eq!(list[0]["attempts"][0]["error"], "HTTP 503 Service Unavailable");
    let text = app.metrics().await;
    assert!(
        text.contains("escalations_webhook_deliveries_total{outcome=\"retrying\"} 2"),
        "{text}"
    );
});

db_test_with!(
    a_receiver_down_for_the_whole_schedule_leaves_the_delivery_failed_until_redelivered,
    fast(),
    |app| {
        let Some(rx) = Receiver::start().await else { return };
        let police = manager(&app, "wb-police");
        let (ep, secret) = create(&app, &police, &rx.url("down"), json!([])).await;
        rx.secrets("down", &[&secret]);
        rx.fail("down", "all");
        raise(&app, "WH-0003").await;
        let list = wait_deliveries(&app, &police, &ep, |d| {
            d.first().is_some_and(|d| d["state"] == "FAILED")
        })
        .await;
        assert_eq!(
            statuses(&list[0]),
            [json!(503), json!(503), json!(503)],
            "the schedule: two retries"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(rx.requests("down").await.len(), 3, "no attempt after the schedule");
        // Another agency's client cannot redeliver it.
        let other = manager(&app, "wb-health");
        let err = app.gql_as_err(&other, REDELIVER, json!({ "id": list[0]["id"] })).await;
        assert_eq!(err["extensions"]["code"], "NOT_FOUND");
        rx.heal("down");
        let again = app.gql_as_ok(&police, REDELIVER, json!({ "id": list[0]["id"] })).await;
        assert_eq!(again["redeliverWebhook"]["delivery"]["state"], "PENDING");
        let got = rx.wait_for("down", 4).await;
        assert_eq!(got[3]["status"], 204);
        assert_eq!(got[3]["verified"], json!([0]));
        assert_eq!(got[3]["id"], got[0]["id"], "the same webhook-id");
        let list = wait_deliveries(&app, &police, &ep, |d| {
            d.first().is_some_and(|d| d["state"] == "DELIVERED")
        })
        .await;
        assert_eq!(statuses(&list[0]).len(), 4);
        let text = app.metrics().await;
        assert!(
            text.contains("escalations_webhook_deliveries_total{outcome=\"failed\"} 1"),
            "{text}"
        );
    }
);

db_test_with!(a_rotation_signs_with_both_secrets_for_its_grace_period, fast(), |app| {
    let Some(rx) = Receiver::start().await else { return };
    let police = manager(&app, "wb-police");
    let (ep, old) = create(&app, &police, &rx.url("rotating"), json!([])).await;
    let data = app
        .gql_as_ok(&police, "mutation($id: ID!) { rotateWebhookSecret(input: { id: $id }) { secret endpoint { previousSecretExpiresAt } } }", json!({ "id": ep }))
        .await;
    let new = data["rotateWebhookSecret"]["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(data["rotateWebhookSecret"]["endpoint"]["previousSecretExpiresAt"].is_string());
    rx.secrets("rotating", &[&new, &old]);
    raise(&app, "WH-0004").await;
    let got = rx.wait_for("rotating", 1).await;
    assert_eq!(got[0]["signatures"], 2);
    assert_eq!(got[0]["verified"], json!([0, 1]), "both the new and the old secret verify");
});

db_test_with!(
    an_endpoint_whose_deliveries_keep_failing_is_disabled_and_says_so,
    {
        let mut s = fast();
        s.webhooks.webhook_disable_after = Duration::from_millis(150);
        s
    },
    |app| {
        let Some(rx) = Receiver::start().await else { return };
        let police = manager(&app, "wb-police");
        let (ep, secret) = create(&app, &police, &rx.url("dead"), json!([])).await;
        rx.secrets("dead", &[&secret]);
        rx.fail("dead", "all");
        raise(&app, "WH-0005").await;
        wait_deliveries(&app, &police, &ep, |d| d.first().is_some_and(|d| d["state"] == "FAILED"))
            .await;
        let data = app
            .gql_as_ok(&police, "{ webhookEndpoints { id enabled disabledReason } }", json!({}))
            .await;
        let listed = &data["webhookEndpoints"][0];
        assert_eq!(listed["enabled"], false, "{listed:#}");
        assert!(listed["disabledReason"].as_str().unwrap().contains("failed"), "{listed:#}");
        // Disabled: the next event writes no delivery for it.
        raise(&app, "WH-0006").await;
        assert_eq!(deliveries(&app, &police, &ep).await.len(), 1);
        // Enabled again: the reason goes.
        let data = app.gql_as_ok(&police, "mutation($id: ID!) { updateWebhookEndpoint(input: { id: $id, enabled: true }) { endpoint { enabled disabledReason } } }", json!({ "id": ep })).await;
        assert_eq!(
            data["updateWebhookEndpoint"]["endpoint"],
            json!({ "enabled": true, "disabledReason": null })
        );
    }
);

db_test!(endpoint_urls_must_be_https_to_public_addresses, |app| {
    let police = manager(&app, "wb-police");
    for url in [
        "http://127.0.0.1/hook",
        "https://127.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://10.0.0.5/hook",
        "https://192.168.1.10/hook",
        "http://hooks.example.org/hook",
        "https://user:pass@1.1.1.1/hook",
        "not a url",
    ] {
        let err = app.gql_as_err(&police, CREATE, json!({ "i": { "url": url } })).await;
        assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{url}: {err:#}");
        assert_eq!(err["extensions"]["field"], "url", "{url}");
    }
    let err =
        app.gql_as_err(&police, CREATE, json!({ "i": { "url": "https://localhost/hook" } })).await;
    assert!(err["message"].as_str().unwrap().contains("not a public address"), "{err:#}");
    // A public address is accepted (nothing is sent until an event).
    create(&app, &police, "https://1.1.1.1/hook", json!([])).await;
    let data = app.gql_as_ok(&police, "{ webhookEndpoints { url } }", json!({})).await;
    assert_eq!(
        data["webhookEndpoints"],
        json!([{ "url": "https://1.1.1.1/hook" }]),
        "refused ones are not stored"
    );
});

db_test_with!(a_stored_endpoint_pointing_inside_is_never_connected_to, polling(), |app| {
    // Endpoints written behind the API (as if the rules had changed since):
    // the checks at connect time refuse them, IP literal and name alike.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let wb = app.western_bay().await;
    let police = manager(&app, "wb-police");
    let mut ids = Vec::new();
    for url in [format!("https://127.0.0.1:{port}/x"), format!("https://localhost:{port}/x")] {
        let id = uuid::Uuid::now_v7();
        ids.push(id.to_string());
        let now = chrono::Utc::now();
        use sea_orm::{ActiveValue::Set, EntityTrait};
        entity::webhook_endpoint::Entity::insert(entity::webhook_endpoint::ActiveModel {
            id: Set(id),
            partnership_id: Set(wb.partnership),
            agency_id: Set(Some(wb.police)),
            owner_issuer: Set(TEST_ISSUER.into()),
            owner_sub: Set("client-1".into()),
            url: Set(url),
            description: Set(String::new()),
            event_types: Set(String::new()),
            secret: Set("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
            previous_secret: Set(None),
            previous_secret_until_ms: Set(None),
            enabled: Set(true),
            disabled_reason: Set(None),
            failing_since_ms: Set(None),
            deleted_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            lease_owner: Set(None),
            lease_until_ms: Set(None),
        })
        .exec_without_returning(&app.db)
        .await
        .unwrap();
    }
    raise(&app, "WH-0007").await;
    for id in &ids {
        let list = wait_deliveries(&app, &police, id, |d| {
            d.first().is_some_and(|d| !d["attempts"].as_array().unwrap().is_empty())
        })
        .await;
        let attempt = &list[0]["attempts"][0];
        assert!(attempt["httpStatus"].is_null(), "{attempt:#}");
        assert!(attempt["error"].as_str().unwrap().contains("not a public address"), "{attempt:#}");
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0, "no connection was made");
});

db_test!(
    endpoints_are_managed_by_their_agencys_webhooks_clients_and_every_change_is_audited,
    |app| {
        let input = json!({ "i": { "url": "https://1.1.1.1/a" } });
        for (who, token) in [
            ("a practitioner", app.token(Role::Practitioner, Some("wb-police"), "western-bay")),
            (
                "a cases:read client",
                app.client_token("cases:read", Some("wb-police"), "western-bay"),
            ),
            ("a statistics client", app.client_token("statistics:read", None, "western-bay")),
            (
                "a webhooks client without an agency",
                app.client_token("webhooks:manage", None, "western-bay"),
            ),
        ] {
            let err = app.gql_as_err(&token, CREATE, input.clone()).await;
            assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{who}: {err:#}");
        }
        let police = manager(&app, "wb-police");
        let health = manager(&app, "wb-health");
        let (ep, secret) = create(&app, &police, "https://1.1.1.1/a", json!(["CASE_RAISED"])).await;
        // The partnership's business unit: a statistics client with the scope.
        let unit = app.client_token("webhooks:manage statistics:read", None, "western-bay");
        let made =
            app.gql_as_ok(&unit, CREATE, json!({ "i": { "url": "https://1.1.1.1/unit" } })).await;
        assert!(made["createWebhookEndpoint"]["endpoint"]["agencyId"].is_null());
        // Another agency neither sees nor changes it.
        let data = app.gql_as_ok(&health, "{ webhookEndpoints { id } }", json!({})).await;
        assert_eq!(data["webhookEndpoints"], json!([]));
        let update = "mutation($i: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $i) { endpoint { url enabled eventTypes } } }";
        for (m, vars) in [
            (update, json!({ "i": { "id": ep, "enabled": false } })),
            (
                "mutation($i: WebhookEndpointIdInput!) { rotateWebhookSecret(input: $i) { secret } }",
                json!({ "i": { "id": ep } }),
            ),
            (
                "mutation($i: WebhookEndpointIdInput!) { deleteWebhookEndpoint(input: $i) { endpoint { id } } }",
                json!({ "i": { "id": ep } }),
            ),
        ] {
            let err = app.gql_as_err(&health, m, vars).await;
            assert_eq!(err["extensions"]["code"], "NOT_FOUND", "{err:#}");
        }
        let data = app.gql_as_ok(&police, update, json!({ "i": { "id": ep, "url": "https://1.0.0.1/b", "enabled": false, "eventTypes": [] } })).await;
        assert_eq!(
            data["updateWebhookEndpoint"]["endpoint"],
            json!({ "url": "https://1.0.0.1/b", "enabled": false, "eventTypes": [] })
        );
        let err = app
            .gql_as_err(&police, update, json!({ "i": { "id": ep, "url": "https://127.0.0.1/" } }))
            .await;
        assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT");
        let rotated = app.gql_as_ok(&police, "mutation($i: WebhookEndpointIdInput!) { rotateWebhookSecret(input: $i) { secret } }", json!({ "i": { "id": ep } })).await;
        let new_secret = rotated["rotateWebhookSecret"]["secret"].as_str().unwrap().to_owned();
        let deleted = app.gql_as_ok(&police, "mutation($i: WebhookEndpointIdInput!) { deleteWebhookEndpoint(input: $i) { endpoint { deletedAt enabled } } }", json!({ "i": { "id": ep } })).await;
        assert!(deleted["deleteWebhookEndpoint"]["endpoint"]["deletedAt"].is_string());
        let err =
            app.gql_as_err(&police, update, json!({ "i": { "id": ep, "enabled": true } })).await;
        assert_eq!(err["extensions"]["code"], "CONFLICT", "a deleted endpoint stays deleted");
        let data = app.gql_as_ok(&police, "{ webhookEndpoints { id deletedAt } }", json!({})).await;
        assert_eq!(data["webhookEndpoints"][0]["id"], ep, "kept, marked deleted");
        // The audit: each change, by whom, without the secret.
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        let rows = entity::webhook_audit::Entity::find()
            .filter(entity::webhook_audit::Column::EndpointId.eq(ep.parse::<uuid::Uuid>().unwrap()))
            .order_by_asc(entity::webhook_audit::Column::Seq)
            .all(&app.db)
            .await
            .unwrap();
        let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["CREATE", "UPDATE", "ROTATE_SECRET", "DELETE"]);
        for r in &rows {
            assert_eq!((r.actor_sub.as_str(), r.actor_issuer.as_str()), ("client-1", TEST_ISSUER));
            assert!(!r.data.contains(&secret) && !r.data.contains(&new_secret), "{}", r.data);
        }
    }
);

db_test_with!(an_expired_claim_of_a_dead_instance_is_taken_over, fast(), |app| {
    let Some(rx) = Receiver::start().await else { return };
    let police = manager(&app, "wb-police");
    let (ep, secret) = create(&app, &police, &rx.url("orphan"), json!([])).await;
    rx.secrets("orphan", &[&secret]);
    // An instance that died holding the endpoint's lease for 1.5 s more.
    let until = chrono::Utc::now().timestamp_millis() + 1500;
    {
        use sea_orm::sea_query::Expr;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let changed = entity::webhook_endpoint::Entity::update_many()
            .col_expr(
                entity::webhook_endpoint::Column::LeaseOwner,
                Expr::value(uuid::Uuid::now_v7()),
            )
            .col_expr(entity::webhook_endpoint::Column::LeaseUntilMs, Expr::value(until))
            .filter(entity::webhook_endpoint::Column::Id.eq(ep.parse::<uuid::Uuid>().unwrap()))
            .exec(&app.db)
            .await
            .unwrap();
        assert_eq!(changed.rows_affected, 1);
    }
    raise(&app, "WH-0008").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(rx.requests("orphan").await.is_empty(), "the lease holds while it runs");
    let got = rx.wait_for("orphan", 1).await;
    assert_eq!(got[0]["verified"], json!([0]));
    assert!(chrono::Utc::now().timestamp_millis() >= until);
});

/// A server process on `db_url` with fast webhook settings.
struct Process(std::process::Child, String);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(db_url: &str) -> Process {
    start_with(db_url, &[])
}

fn start_with(db_url: &str, env: &[(&str, &str)]) -> Process {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_escalations"))
        .args(["serve", "--demo", "--listen-addr", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", db_url)
        .env("JWT_SECRET", TEST_SECRET)
        .env("JWT_ISSUER", TEST_ISSUER)
        .env("JWT_AUDIENCE", TEST_AUDIENCE)
        .env("RATE_LIMIT_PEOPLE", "off")
        .env("RATE_LIMIT_COST", "off")
        .env("RATE_LIMIT_STATISTICS_READ", "off")
        .env("MAX_IN_FLIGHT_PER_CLIENT", "off")
        .env("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true")
        .env("WEBHOOK_RETRY_SCHEDULE", "100ms,200ms")
        .env("WEBHOOK_POLL_INTERVAL", "100ms")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Process(child, format!("http://127.0.0.1:{port}/graphql"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server on port {port} did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_deliver_each_event_once_per_endpoint_in_event_order() {
    let Some(db) = TestDb::create(Backend::Postgres).await else { return };
    let Some(rx) = Receiver::start().await else { return };
    let a = start(db.url());
    let b = start(db.url());
    let client = reqwest::Client::new();
    let claims = |scope: &str, agency: &str| escalations::auth::MintClaims {
        sub: format!("{scope}-{agency}"),
        scope: Some(scope.into()),
        agency: Some(agency.into()),
        partnership: "western-bay".into(),
        ..Default::default()
    };
    let hooks = mint(claims("webhooks:manage", "wb-police"));
    let mut secrets = Vec::new();
    for name in ["one", "two"] {
        let data =
            post(&client, &a.1, &hooks, CREATE, json!({ "i": { "url": rx.url(name) } })).await;
        let secret = data["createWebhookEndpoint"]["secret"].as_str().unwrap().to_owned();
        rx.secrets(name, &[&secret]);
        secrets.push(secret);
    }
    let practitioner = mint(escalations::auth::MintClaims {
        sub: "p".into(),
        role: Some(Role::Practitioner),
        agency: Some("wb-police".into()),
        partnership: "western-bay".into(),
        ..Default::default()
    });
    let receiving = agency_id(&client, &a.1, &practitioner, "wb-swansea-csc").await;
    // 20 changes, through both processes, two at a time.
    for round in 0..10 {
        let raise = |n: usize| json!({ "input": { "receivingAgencyId": receiving, "childReference": format!("WHP-{n}"), "category": "other", "summary": "s" } });
        tokio::join!(
            post(&client, &a.1, &practitioner, RAISE, raise(2 * round)),
            post(&client, &b.1, &practitioner, RAISE, raise(2 * round + 1)),
        );
    }
    let reader = mint(claims("cases:read", "wb-police"));
    let feed = post(&client, &b.1, &reader, FEED, json!({ "id": null })).await;
    let events: Vec<Value> =
        feed["caseEvents"]["nodes"].as_array().unwrap().iter().map(|e| e["id"].clone()).collect();
    assert_eq!(events.len(), 20);
    for name in ["one", "two"] {
        let got = rx.wait_for(name, 20).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let got_after = rx.requests(name).await;
        assert_eq!(got_after.len(), 20, "{name}: no event twice: {got_after:#?}");
        let ids: Vec<Value> = got.iter().map(|r| r["id"].clone()).collect();
        assert_eq!(ids, events, "{name}: each event once, in event order");
        assert!(got.iter().all(|r| r["verified"] == json!([0]) && r["status"] == 204));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_in_flight_when_its_process_is_killed_is_sent_by_another() {
    let Some(db) = TestDb::create(Backend::Postgres).await else { return };
    let Some(rx) = Receiver::start().await else { return };
    // A 1 s timeout: a claim lasts 2 × 1 s + 5 s.
    let env = [("WEBHOOK_TIMEOUT", "1s")];
    let mut a = start_with(db.url(), &env);
    let client = reqwest::Client::new();
    let hooks = mint(escalations::auth::MintClaims {
        sub: "hooks".into(),
        scope: Some("webhooks:manage".into()),
        agency: Some("wb-police".into()),
        partnership: "western-bay".into(),
        ..Default::default()
    });
    let data =
        post(&client, &a.1, &hooks, CREATE, json!({ "i": { "url": rx.url("crash") } })).await;
    rx.secrets("crash", &[data["createWebhookEndpoint"]["secret"].as_str().unwrap()]);
    rx.fail("crash", "hang");
    let practitioner = mint(escalations::auth::MintClaims {
        sub: "p".into(),
        role: Some(Role::Practitioner),
        agency: Some("wb-police".into()),
        partnership: "western-bay".into(),
        ..Default::default()
    });
    let receiving = agency_id(&client, &a.1, &practitioner, "wb-swansea-csc").await;
    post(&client, &a.1, &practitioner, RAISE, json!({ "input": { "receivingAgencyId": receiving, "childReference": "WHK-1", "category": "other", "summary": "s" } })).await;
    // The attempt is in flight (the receiver holds it) when A dies.
    let first = rx.wait_for("crash", 1).await;
    assert_eq!(first[0]["status"], "hang");
    a.0.kill().unwrap();
    a.0.wait().unwrap();
    let killed = Instant::now();
    let _b = start_with(db.url(), &env);
    let got = rx.wait_for("crash", 2).await;
    assert_eq!(got[1]["id"], got[0]["id"], "the same delivery, sent again");
    assert_eq!(got[1]["status"], 204);
    assert_eq!(got[1]["verified"], json!([0]));
    assert!(killed.elapsed() < Duration::from_secs(15), "taken over once the claim ran out");
}
