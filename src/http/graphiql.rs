//! GraphiQL, served whole by the binary: `GET /graphql` from a browser is
//! our own page, and every script and style it loads comes from
//! `GET /graphiql/<file>`, embedded at build time, so the IDE works on a
//! network that reaches no CDN. Served only when `GRAPHIQL` says so (by
//! default in demo mode alone; never in production mode): elsewhere the
//! page and the files are 404.
//!
//! The vendored files are GraphiQL 4's UMD production build and the React
//! 18 UMD production builds it runs on, at exact versions, fetched by
//! `assets/graphiql/refresh` (where each comes from, its hash, and why these
//! versions: `assets/graphiql/README.md`). GraphiQL 5 ships no UMD build
//! (only ES modules, which need a bundler or an import map), so 4 is the
//! newest that runs from plain script tags. Its bundle holds the
//! `graphql-ws` client, so subscriptions (`graphql-transport-ws`) work too.
//!
//! The page names each file with its `integrity` (sha384, subresource
//! integrity; the unit tests recompute them from the embedded bytes), and
//! the page and the files are sent with a strict Content-Security-Policy:
//! nothing from elsewhere, scripts and styles from this server only (the
//! start-up script is a file, `start.js`, not inline), connections to this
//! server (HTTP and WebSocket), fonts and images from it or `data:` (the
//! vendored stylesheet inlines its fonts), no framing, no `<base>`, no form
//! posts. The vendored files have versions in their names and are cached
//! for a year as immutable; the page and our own files (`graphiql/`: the
//! page's template, its stylesheet and the start-up script) are
//! revalidated. The start-up script gives GraphiQL a storage that keeps its
//! tabs and history but never their headers (tokens) or responses (case
//! data).

use std::sync::LazyLock;

use axum::extract::{Path, State};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// Where the files are served, relative to the page (`/graphql`), so that
/// the page also works behind a proxy that mounts the API under a prefix.
const PREFIX: &str = "graphiql/";

/// One file the page loads.
struct Asset {
    /// Its name under `/graphiql/`.
    name: &'static str,
    body: &'static [u8],
    content_type: &'static str,
    /// `sha384-` and the base64 of the body's SHA-384.
    integrity: &'static str,
    /// Whether its name changes with its content (a vendored file's
    /// version), so that it may be cached as immutable.
    versioned: bool,
    kind: Kind,
}

#[derive(PartialEq)]
enum Kind {
    Script,
    Style,
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file, in the order the page loads them: styles, then React, React
/// DOM, GraphiQL (which needs both as globals), and the start-up script.
const ASSETS: [Asset; 6] = [
    Asset {
        name: "graphiql-4.1.2.min.css",
        body: include_bytes!("../../assets/graphiql/graphiql-4.1.2.min.css"),
        content_type: CSS,
        integrity: "sha384-1el1QShFBnnXTx9x/Cprg82hZWKt0ry29OAYIXt05swbi0KcZDFoj0CWguMpopJr",
        versioned: true,
        kind: Kind::Style,
    },
    Asset {
        name: "page.css",
        body: include_bytes!("graphiql/page.css"),
        content_type: CSS,
        integrity: "sha384-U7eewD+0q3KJ/yzhz1UK3UiaENZqess9Gv2YQ+2fjdIds+rOZ0Rb6yILOFdLEyyu",
        versioned: false,
        kind: Kind::Style,
    },
    Asset {
        name: "react-18.3.1.production.min.js",
        body: include_bytes!("../../assets/graphiql/react-18.3.1.production.min.js"),
        content_type: JS,
        integrity: "sha384-DGyLxAyjq0f9SPpVevD6IgztCFlnMF6oW/XQGmfe+IsZ8TqEiDrcHkMLKI6fiB/Z",
        versioned: true,
        kind: Kind::Script,
    },
    Asset {
        name: "react-dom-18.3.1.production.min.js",
        body: include_bytes!("../../assets/graphiql/react-dom-18.3.1.production.min.js"),
        content_type: JS,
        integrity: "sha384-gTGxhz21lVGYNMcdJOyq01Edg0jhn/c22nsx0kyqP0TxaV5WVdsSH1fSDUf5YJj1",
        versioned: true,
        kind: Kind::Script,
    },
    Asset {
        name: "graphiql-4.1.2.min.js",
        body: include_bytes!("../../assets/graphiql/graphiql-4.1.2.min.js"),
        content_type: JS,
        integrity: "sha384-9XdHu7ajgGJziD4J1zNBKQ842Q/+zZfDv+ib1eMhZWBH6hPAs806x+Jbcf0yNO6B",
        versioned: true,
        kind: Kind::Script,
    },
    Asset {
        name: "start.js",
        body: include_bytes!("graphiql/start.js"),
        content_type: JS,
        integrity: "sha384-Zus60ya480bdNl4V0b7oF6h+TWaY3N0/qsjJa6JycX1lkz/1tx6my/IxEQAEPUU2",
        versioned: false,
        kind: Kind::Script,
    },
];

/// The page: our own (`graphiql/page.html`), naming only the files above;
/// the empty icon keeps browsers from asking for `/favicon.ico`.
static PAGE: LazyLock<String> = LazyLock::new(|| {
    let tags = |kind: Kind| {
        let tag = |a: &Asset| match a.kind {
            Kind::Style => format!(
                "    <link rel=\"stylesheet\" href=\"{PREFIX}{}\" integrity=\"{}\" \
                 crossorigin=\"anonymous\">\n",
                a.name, a.integrity
            ),
            Kind::Script => format!(
                "    <script src=\"{PREFIX}{}\" integrity=\"{}\" \
                 crossorigin=\"anonymous\"></script>\n",
                a.name, a.integrity
            ),
        };
        ASSETS.iter().filter(|a| a.kind == kind).map(tag).collect::<String>()
    };
    include_str!("graphiql/page.html")
        .replace("{styles}", &tags(Kind::Style))
        .replace("{scripts}", &tags(Kind::Script))
});

/// The page's Content-Security-Policy. Connections go to this server over
/// HTTP (`'self'`) and WebSocket: `ws:`/`wss:` of the request's own host,
/// spelled out for the browsers that do not count them as `'self'`.
fn content_security_policy(headers: &HeaderMap) -> HeaderValue {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<Authority>().ok())
        .filter(|a| a.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)));
    let sockets = host.map(|h| format!(" ws://{h} wss://{h}")).unwrap_or_default();
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; \
         connect-src 'self'{sockets}; img-src 'self' data:; font-src 'self' data:; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'none'"))
}

/// The headers every GraphiQL response carries.
fn headers_of(
    headers: &HeaderMap,
    content_type: &'static str,
    cache: &'static str,
) -> [(header::HeaderName, HeaderValue); 4] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (header::CONTENT_SECURITY_POLICY, content_security_policy(headers)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ]
}

const REVALIDATE: &str = "no-cache";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The GraphiQL page (`GET /graphql` without a query), where it is served.
pub(super) fn page(headers: &HeaderMap) -> Response {
    (
        headers_of(headers, "text/html; charset=utf-8", REVALIDATE),
        [(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"))],
        PAGE.as_str(),
    )
        .into_response()
}

/// `GET /graphql` without a query where GraphiQL is not served: a 404
/// that says how to send a query, and names no setting (a production
/// server tells a stranger nothing about its configuration).
pub(super) fn not_served() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))],
        "GraphiQL is not served here. Send GraphQL requests with POST /graphql \
         (application/json) or GET /graphql?query=...\n",
    )
        .into_response()
}

/// `GET /graphiql/<file>`: one of the page's files where GraphiQL is
/// served; anything else is a 404.
pub(super) async fn asset(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !state.graphiql {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cache = if asset.versioned { IMMUTABLE } else { REVALIDATE };
    (headers_of(&headers, asset.content_type, cache), asset.body).into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use base64::Engine as _;
    use sha2::{Digest, Sha384};

    use super::*;

    fn integrity(body: &[u8]) -> String {
        format!("sha384-{}", base64::engine::general_purpose::STANDARD.encode(Sha384::digest(body)))
    }

    #[test]
    fn each_integrity_is_the_hash_of_the_embedded_file() {
        for a in &ASSETS {
            assert_eq!(a.integrity, integrity(a.body), "{}: put this hash in ASSETS", a.name);
        }
    }

    #[test]
    fn the_readme_of_the_vendored_files_gives_their_hashes() {
        let readme = include_str!("../../assets/graphiql/README.md");
        for a in ASSETS.iter().filter(|a| a.versioned) {
            let row = readme.lines().find(|l| l.contains(&format!("`{}`", a.name)));
            let row =
                row.unwrap_or_else(|| panic!("assets/graphiql/README.md names no {}", a.name));
            assert!(
                row.contains(a.integrity),
                "assets/graphiql/README.md: {} is {}",
                a.name,
                a.integrity
            );
        }
    }

    #[test]
    fn the_page_loads_each_file_from_here_with_its_integrity_and_nothing_else() {
        for a in &ASSETS {
            let at = format!(
                "\"{PREFIX}{}\" integrity=\"{}\" crossorigin=\"anonymous\"",
                a.name, a.integrity
            );
            assert!(PAGE.contains(&at), "{at}\n{}", *PAGE);
        }
        // The files, and an empty icon (so that no browser asks for
        // /favicon.ico, a 404).
        assert_eq!(PAGE.matches("href=").count() + PAGE.matches("src=").count(), ASSETS.len() + 1);
        assert!(PAGE.contains("<link rel=\"icon\" href=\"data:,\">"));
        assert!(!PAGE.contains('{'), "every placeholder filled: {}", *PAGE);
        assert!(!PAGE.contains("//"), "{}", *PAGE);
        assert!(!PAGE.contains("<style") && !PAGE.contains("<script>"), "nothing inline");
    }

    #[test]
    fn the_policy_names_the_requests_own_host_for_websockets_and_no_other() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        let csp = content_security_policy(&headers);
        assert!(
            csp.to_str()
                .unwrap()
                .contains("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;"),
            "{csp:?}"
        );
        for odd in ["a b", "x;script-src *", "a/b", ""] {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(odd).unwrap());
            let csp = content_security_policy(&headers);
            assert!(csp.to_str().unwrap().contains("connect-src 'self';"), "{odd}: {csp:?}");
        }
        let csp = content_security_policy(&HeaderMap::new());
        assert!(csp.to_str().unwrap().starts_with("default-src 'none'; script-src 'self';"));
    }
}
