//! Two server processes on one PostgreSQL: simultaneous conflicting changes
//! of one case end with exactly one applied.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use escalations::domain::role::Role;
use serde_json::{Value, json};

use crate::helpers::{Backend, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, TestDb, mint};

pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
}

impl Server {
    /// Kills the process at once (SIGKILL): no shutdown, nothing finished.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process as an orchestrator would (SIGTERM) and waits for
    /// its graceful shutdown to end.
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        self.child.wait().unwrap()
    }

    /// The process's standard error, when it was started with
    /// [`start_logged`].
    pub(crate) fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.stderr.take()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start(db_url: &str) -> Server {
    start_with(db_url, &[])
}

/// `start`, with more environment settings.
pub(crate) fn start_with(db_url: &str, env: &[(&str, &str)]) -> Server {
    spawn(db_url, env, Stdio::null())
}

/// `start_with`, its standard error kept for [`Server::take_stderr`].
pub(crate) fn start_logged(db_url: &str, env: &[(&str, &str)]) -> Server {
    spawn(db_url, env, Stdio::piped())
}

fn spawn(db_url: &str, env: &[(&str, &str)], stderr: Stdio) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_escalations"))
        .args(["serve", "--demo", "--listen-addr", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", db_url)
        .env("JWT_SECRET", TEST_SECRET)
        .env("JWT_ISSUER", TEST_ISSUER)
        .env("JWT_AUDIENCE", TEST_AUDIENCE)
        .env("RATE_LIMIT_PEOPLE", "off")
        .env("RATE_LIMIT_COST", "off")
        .env("MAX_IN_FLIGHT_PER_CLIENT", "off")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Server { child, url: format!("http://127.0.0.1:{port}/graphql") };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server on port {port} did not start");
}

/// `post`, requiring an answer without errors: its `data`.
pub(crate) async fn post_ok(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    vars: Value,
) -> Value {
    let body = post(client, url, token, query, vars).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    body["data"].clone()
}

/// The id of the agency `code` of the token's partnership, read over the API.
pub(crate) async fn agency_id(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    code: &str,
) -> Value {
    let directory =
        post_ok(client, url, token, "{ partnerships { agencies { id code } } }", json!({})).await;
    directory["partnerships"][0]["agencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == code)
        .unwrap()["id"]
        .clone()
}

pub(crate) async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    vars: Value,
) -> Value {
    client
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": vars }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub(crate) fn token(role: Role, agency: &str) -> String {
    mint(escalations::auth::MintClaims {
        sub: format!("{}-{agency}", role.as_str()),
        role: Some(role),
        agency: Some(agency.into()),
        partnership: "western-bay".into(),
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_apply_exactly_one_of_two_conflicting_changes() {
    let Some(db) = TestDb::create(Backend::Postgres).await else { return };
    // One after the other: the first applies the migrations.
    let a = start(db.url());
    let b = start(db.url());
    let client = reqwest::Client::new();
    let practitioner = token(Role::Practitioner, "wb-police");
    let manager = token(Role::Manager, "wb-police");
    let directory =
        post(&client, &a.url, &manager, "{ partnerships { agencies { id code } } }", json!({}))
            .await;
    let receiving = directory["data"]["partnerships"][0]["agencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == "wb-swansea-csc")
        .unwrap()["id"]
        .clone();
    let raise = "mutation($i: RaiseCaseInput!) { raiseCase(input: $i) { case { id } } }";
    let escalate =
        "mutation($i: EscalateCaseInput!) { escalateCase(input: $i) { case { version } } }";
    let resolve = "mutation($i: ResolveCaseInput!) { resolveCase(input: $i) { case { version } } }";
    for round in 0..10 {
        let vars = json!({ "i": { "receivingAgencyId": receiving, "childReference": format!("SWP-{round}"), "category": "other", "summary": "s" } });
        let raised = post(&client, &a.url, &practitioner, raise, vars).await;
        let id = raised["data"]["raiseCase"]["case"]["id"].clone();
        assert!(id.is_string(), "{raised:#}");
        // Round by round: two escalations, or an escalation and a resolution,
        // one through each process, at the same moment, both made against
        // version 1.
        let esc = json!({ "i": { "caseId": id, "expectedVersion": 1, "reason": "UNRESOLVED" } });
        let (query_b, vars_b) = if round % 2 == 0 {
            (escalate, esc.clone())
        } else {
            (resolve, json!({ "i": { "caseId": id, "expectedVersion": 1, "outcome": "agreed" } }))
        };
        let (x, y) = tokio::join!(
            post(&client, &a.url, &manager, escalate, esc),
            post(&client, &b.url, &manager, query_b, vars_b)
        );
        let applied = [&x, &y].iter().filter(|r| r.get("errors").is_none()).count();
        let conflicts =
            [&x, &y].iter().filter(|r| r["errors"][0]["extensions"]["code"] == "CONFLICT").count();
        // The version check decides: exactly one applied, one conflict.
        assert_eq!((applied, conflicts), (1, 1), "round {round}: {x:#} {y:#}");
        let now = post(
            &client,
            &a.url,
            &manager,
            "query($id: ID!) { case(id: $id) { version } }",
            json!({ "id": id }),
        )
        .await;
        assert_eq!(now["data"]["case"]["version"], 2, "round {round}: one change only");
    }
    drop((a, b));
    let conn = escalations::db::connect(&escalations::db::DbSettings {
        url: db.url().to_owned(),
        max_connections: Some(1),
    })
    .await
    .unwrap();
    assert_eq!(escalations::service::audit::verify(&conn).await.unwrap(), None);
}
