//! GraphiQL served by the binary alone: the page, its files and their
//! headers over HTTP. Not about the database: SQLite only.

use base64::Engine as _;
use sha2::{Digest, Sha384};

use crate::helpers::{Backend, TestApp, spawn_app};

/// The policy of the page and its files, for a server at `host`.
fn policy(host: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; \
         connect-src 'self' ws://{host} wss://{host}; img-src 'self' data:; \
         font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
}

/// The files the page names, with their `integrity`, in page order.
fn files_of(page: &str) -> Vec<(String, String)> {
    page.split("=\"graphiql/")
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once('"').unwrap();
            let integrity = rest.split("integrity=\"").nth(1).unwrap().split('"').next().unwrap();
            (name.to_owned(), integrity.to_owned())
        })
        .collect()
}

async fn page(app: &TestApp) -> String {
    let res =
        app.client.get(app.url("/graphql")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["content-security-policy"], policy(&app.addr.to_string()).as_str());
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-cache");
    res.text().await.unwrap()
}

#[tokio::test]
async fn the_page_loads_only_the_servers_own_files_each_as_its_integrity_says() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let page = page(&app).await;
    assert!(!page.contains("://") && !page.contains("<script>"), "{page}");
    let files = files_of(&page);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "graphiql-4.1.2.min.css",
            "page.css",
            "react-18.3.1.production.min.js",
            "react-dom-18.3.1.production.min.js",
            "graphiql-4.1.2.min.js",
            "start.js",
        ]
    );
    for (name, integrity) in &files {
        let res = app.get(&format!("/graphiql/{name}")).await;
        assert_eq!(res.status(), 200, "{name}");
        let h = res.headers().clone();
        let kind = if name.ends_with(".js") { "text/javascript" } else { "text/css" };
        assert_eq!(h["content-type"], format!("{kind}; charset=utf-8").as_str(), "{name}");
        assert_eq!(h["content-security-policy"], policy(&app.addr.to_string()).as_str());
        assert_eq!(h["x-content-type-options"], "nosniff");
        // Vendored files carry their version in their name; ours do not.
        let ours = ["page.css", "start.js"].contains(&name.as_str());
        let cache = if ours { "no-cache" } else { "public, max-age=31536000, immutable" };
        assert_eq!(h["cache-control"], cache, "{name}");
        let body = res.bytes().await.unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha384::digest(&body));
        assert_eq!(integrity, &format!("sha384-{hash}"), "{name}");
    }
    for missing in ["/graphiql/index.umd.js.map", "/graphiql/", "/graphiql/..%2FCargo.toml"] {
        assert_eq!(app.get(missing).await.status(), 404, "{missing}");
    }
}
