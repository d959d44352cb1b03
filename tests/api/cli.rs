//! The binary's subcommands.

use std::process::Command;

fn escalations(db_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_escalations"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn migrate_and_seed_demo_work_on_a_new_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());

    let (ok, out, err) = escalations(&url, &["migrate", "status"]);
    assert!(ok, "{err}");
    assert!(out.lines().all(|l| l.starts_with("pending ")), "{out}");

    let (ok, out, err) = escalations(&url, &["migrate", "apply"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().next(), Some("migrations applied"));
    // The built-in protocols are stored as version 1, once.
    assert!(out.contains("built-in protocol western-bay version 1 stored"), "{out}");
    assert_eq!(out.lines().count(), 6, "{out}");
    let (ok, out, _) = escalations(&url, &["migrate", "apply"]);
    assert!(ok);
    assert_eq!(out.trim(), "migrations applied");
    let (_, out, _) = escalations(&url, &["migrate", "status"]);
    assert!(!out.is_empty() && out.lines().all(|l| l.starts_with("applied ")), "{out}");

    let (ok, out, err) = escalations(&url, &["seed-demo"]);
    assert!(ok, "{err}");
    assert!(out.contains("5 partnerships"), "{out}");
    // Idempotent: a second load adds nothing.
    let (ok, out, _) = escalations(&url, &["seed-demo"]);
    assert!(ok);
    assert!(out.contains("0 partnerships and 0 agencies added"), "{out}");
}

#[test]
fn an_unreachable_database_is_a_clear_error_without_the_password() {
    let (ok, _, err) =
        escalations("postgres://app:hunter2@127.0.0.1:1/none", &["migrate", "status"]);
    assert!(!ok);
    assert!(err.contains("connecting to the database"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// SIGTERM stops the server cleanly: it exits 0 after closing its pool.
#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("serve.db").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(env!("CARGO_BIN_EXE_escalations"))
        .args(["serve", "--demo", "--listen-addr", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(up, "server did not start");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("GraphiQL: open http://127.0.0.1:"), "{stdout}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

/// `BANK_HOLIDAYS_FILE`: GOV.UK's format is read at start; a malformed or
/// missing file stops every command before it does anything, naming the
/// file and what is wrong.
#[test]
fn a_bank_holidays_file_is_validated_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cal.db").display());
    let with_file = |path: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_escalations"))
            .args(["migrate", "status"])
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "info")
            .env("LOG_FORMAT", "json")
            .env("BANK_HOLIDAYS_FILE", path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };

    // The embedded list itself, as a download would be.
    let good = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/domain/calendars/bank-holidays.json");
    let (ok, out) = with_file(&good);
    assert!(ok, "{out}");
    assert!(out.contains("bank holidays loaded") && out.contains("northern-ireland"), "{out}");

    // A Scottish St Andrew's Day substitute on a Sunday.
    let text = std::fs::read_to_string(&good).unwrap().replace("2025-12-01", "2025-11-30");
    let bad = dir.path().join("bank-holidays.json");
    std::fs::write(&bad, text).unwrap();
    let (ok, out) = with_file(&bad);
    assert!(!ok);
    assert!(
        out.contains(&format!("bank holidays ({})", bad.display()))
            && out.contains("invalid list of bank holidays: scotland: event ")
            && out.contains("2025-11-30 is a Sun"),
        "{out}"
    );
    assert!(!out.contains("pending"), "nothing ran: {out}");

    // An HTML error page saved instead of the JSON.
    std::fs::write(&bad, "<html>Service unavailable</html>").unwrap();
    let (ok, out) = with_file(&bad);
    assert!(!ok);
    assert!(out.contains("not in GOV.UK's bank-holidays.json format"), "{out}");

    let (ok, out) = with_file(&dir.path().join("missing.json"));
    assert!(!ok);
    assert!(out.contains("missing.json"), "{out}");
}

#[test]
fn protocol_commands_validate_publish_list_diff_and_adopt() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("protocols.db").display());
    let western_bay = escalations::domain::protocol::builtin_texts()[0].1;
    let bad = dir.path().join("bad.toml");
    let broken = western_bay.replacen("version = 1", "version = 0", 1).replacen(
        "escalate = []",
        "escalate = [\"board_chair\"]",
        1,
    );
    std::fs::write(&bad, &broken).unwrap();
    let good = dir.path().join("v2.toml");
    let v2 = western_bay.replacen("version = 1", "version = 2", 1).replacen(
        "name = \"Manager to manager\"",
        "name = \"Managers\"",
        1,
    );
    std::fs::write(&good, &v2).unwrap();
    let (bad, good) = (bad.to_str().unwrap(), good.to_str().unwrap());

    // Each problem with its line and path; exit status 1.
    let (ok, out, _) = escalations(&url, &["protocol", "validate", bad]);
    assert!(!ok);
    let line = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert!(out.contains(&format!("{bad}:{}:", line("version = 0"))), "{out}");
    assert!(out.contains(" version: "), "{out}");
    let escalate = format!("{bad}:{}:", line("escalate = [\"board_chair\"]"));
    assert!(out.contains(&escalate) && out.contains("routes[0].stages[4].allow.escalate"), "{out}");
    let (ok, out, err) = escalations(&url, &["protocol", "validate", "--policy", good]);
    assert!(ok, "{err}");
    assert!(out.contains("[western-bay main stage-1]"), "{out}");
    assert!(out.contains("escalate         .  Y  Y  Y  .  raising"), "{out}");

    let (ok, _, err) = escalations(&url, &["migrate", "apply"]);
    assert!(ok, "{err}");
    let (ok, _, err) = escalations(&url, &["seed-demo"]);
    assert!(ok, "{err}");
    let (ok, _, err) =
        escalations(&url, &["protocol", "publish", "--partnership", "western-bay", bad]);
    assert!(!ok && err.contains("nothing published"), "{err}");
    let (ok, out, err) =
        escalations(&url, &["protocol", "publish", "--partnership", "western-bay", good]);
    assert!(ok, "{err}");
    assert!(out.contains("published western-bay version 2"), "{out}");
    let (ok, _, err) =
        escalations(&url, &["protocol", "publish", "--partnership", "western-bay", good]);
    assert!(!ok && err.contains("the next version of western-bay is 3"), "{err}");

    let (ok, out, _) = escalations(&url, &["protocol", "list"]);
    assert!(ok);
    let wb: Vec<&str> = out.lines().filter(|l| l.starts_with("western-bay ")).collect();
    assert_eq!(wb.len(), 2, "{out}");
    assert!(wb[0].contains(" builtin - "), "{out}");
    assert!(wb[1].contains(" cli:") && wb[1].contains(" western-bay "), "{out}");
    let (ok, out, _) = escalations(&url, &["protocol", "diff", "western-bay", "1", "2"]);
    assert!(ok);
    assert_eq!(out.trim(), "StageRenamed routes[0].stages[1].name: Manager to manager -> Managers");

    let (ok, _, err) =
        escalations(&url, &["protocol", "adopt", "--partnership", "western-bay", "1"]);
    assert!(ok, "{err}");
    let (ok, _, err) =
        escalations(&url, &["protocol", "adopt", "--partnership", "western-bay", "5"]);
    assert!(!ok && err.contains("no version 5"), "{err}");
    let (ok, _, err) =
        escalations(&url, &["protocol", "adopt", "--partnership", "western-bay", "--newest"]);
    assert!(ok, "{err}");
}
