//! The one place where errors get their `extensions.code`: [`Code`] is the
//! list of codes (README's table is tested against it, both ways), the
//! [`ErrorExtensions`] impl maps service errors onto it, and [`request`]
//! codes async-graphql's own errors (parse, validation, coercion), which
//! come before or around any resolver. Internal errors are logged here,
//! once, and the client gets a fixed message.
//!
//! Resolvers call `.gql()` on service results rather than `?` alone:
//! async-graphql turns anything `Display` into an error with its text, which
//! would leak database detail.

pub mod request;

use async_graphql::{Error, ErrorExtensions};

use crate::domain::access::Allowed;
use crate::service::ServiceError;

/// Every code this API puts in `extensions.code`. They are part of the API:
/// README's code table lists exactly these, with [`Code::description`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// No valid token.
    Unauthenticated,
    /// The caller's role or side may not do this here.
    Forbidden,
    /// No such thing, or not visible to the caller.
    NotFound,
    /// An input value is malformed or breaks a rule, or a limit is passed.
    BadUserInput,
    /// The query text is not GraphQL.
    GraphqlParseFailed,
    /// The document does not fit the schema.
    GraphqlValidationFailed,
    /// The request does not say which of its operations to run.
    OperationResolutionFailure,
    /// The persisted-query hash names no trusted document.
    PersistedQueryNotFound,
    /// Only trusted documents run, and the request named none by hash.
    PersistedQueryIdRequired,
    /// The change conflicts with the stored state.
    Conflict,
    /// The matter belongs to another procedure.
    OutOfScope,
    /// Over a rate, cost or in-flight limit of the client.
    RateLimited,
    /// The response would be too large.
    ResponseTooLarge,
    /// The request could not be prepared in time through no fault of the
    /// caller's.
    ServiceUnavailable,
    /// Something failed inside the server.
    InternalServerError,
}

impl Code {
    /// Every code, in README's order.
    pub const ALL: [Code; 15] = [
        Code::Unauthenticated,
        Code::Forbidden,
        Code::NotFound,
        Code::BadUserInput,
        Code::GraphqlParseFailed,
        Code::GraphqlValidationFailed,
        Code::OperationResolutionFailure,
        Code::PersistedQueryNotFound,
        Code::PersistedQueryIdRequired,
        Code::Conflict,
        Code::OutOfScope,
        Code::RateLimited,
        Code::ResponseTooLarge,
        Code::ServiceUnavailable,
        Code::InternalServerError,
    ];

    /// The value of `extensions.code`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::BadUserInput => "BAD_USER_INPUT",
            Code::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Code::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Code::OperationResolutionFailure => "OPERATION_RESOLUTION_FAILURE",
            Code::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Code::PersistedQueryIdRequired => "PERSISTED_QUERY_ID_REQUIRED",
            Code::Conflict => "CONFLICT",
            Code::OutOfScope => "OUT_OF_SCOPE",
            Code::RateLimited => "RATE_LIMITED",
            Code::ResponseTooLarge => "RESPONSE_TOO_LARGE",
            Code::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Code::InternalServerError => "INTERNAL_SERVER_ERROR",
        }
    }

    /// What the code means, with the `extensions` that come with it: the
    /// text of README's code table.
    pub const fn description(self) -> &'static str {
        match self {
            Code::Unauthenticated => {
                "No valid token: missing, malformed, expired, wrongly signed, or naming a \
                 partnership or agency this server does not know (HTTP 401 with \
                 `WWW-Authenticate`)."
            }
            Code::Forbidden => {
                "The caller's role or side may not do this here. `extensions.allowedRoles` \
                 lists the roles that may, from the rule that refused (for an action on a \
                 case, the protocol's policy at the case's stage; empty when no role may), \
                 and `extensions.allowedSides` the sides of the dispute that may \
                 (`raising`, `receiving`; empty when the side does not matter)."
            }
            Code::NotFound => {
                "No such thing, or one outside the caller's scope: the two are never told \
                 apart."
            }
            Code::BadUserInput => {
                "An input value is malformed or breaks a rule. A value that does not fit its \
                 type (a date that is no date, an unknown enum value, a string where a number \
                 belongs), as a literal argument or through a variable, names the argument in \
                 `extensions.argument` (with the input field inside it, e.g. \
                 `filter.raisedFrom`) and, when it came in a variable, `extensions.variable`; \
                 a rule about one input field names it in `extensions.field`. Also a request \
                 body that is not one GraphQL request; an `extensions.persistedQuery` that is \
                 not of version 1 with a string `sha256Hash`, or whose hash is not the SHA-256 \
                 of the `query` sent with it (`extensions.field` names which); and every \
                 refused query limit, with \
                 `extensions.limit` naming it (`tokens`, `nesting`, `fragmentCycles`, \
                 `depth`, `aliases`, `directives`, `cost`, `prepareTimeout`, `nul`, \
                 `operationType` for a subscription sent with POST or GET or a query or \
                 mutation over WebSocket; over WebSocket also `subscriptionsPerConnection`) \
                 and, where it is a number, `extensions.value` and `extensions.max`: text holding \
                 a NUL character (U+0000) anywhere in the query or its variables is refused \
                 the same way on both databases. Refused before execution, it is HTTP 400 \
                 under `application/graphql-response+json`, with no `data`."
            }
            Code::GraphqlParseFailed => {
                "The query text is not GraphQL (a syntax error). Nothing ran: no `data`, and \
                 HTTP 400 under `application/graphql-response+json`."
            }
            Code::GraphqlValidationFailed => {
                "The document does not fit the schema: an unknown field, argument or type, a \
                 missing required argument, a variable used but not declared or declared but \
                 not used, a selection missing on an object. Nothing ran: no `data`, and \
                 HTTP 400 under `application/graphql-response+json`."
            }
            Code::OperationResolutionFailure => {
                "The document holds several operations and `operationName` is missing or \
                 names none of them (or names one in a document of one unnamed operation). \
                 Nothing ran: no `data`, and HTTP 400 under \
                 `application/graphql-response+json`."
            }
            Code::PersistedQueryNotFound => {
                "The hash of `extensions.persistedQuery` names no trusted document \
                 (`TRUSTED_DOCUMENTS`), and no `query` came with it (or one did, and only \
                 trusted documents run). Nothing ran: no `data`; the message is \
                 `PersistedQueryNotFound`, as Apollo Server sends it. HTTP 200 under \
                 `application/json`, as Apollo Server answers, and 404 under \
                 `application/graphql-response+json`, as Apollo Router answers an unknown \
                 id; either way with `Cache-Control: private, no-cache, must-revalidate`."
            }
            Code::PersistedQueryIdRequired => {
                "Only trusted documents run (`TRUSTED_DOCUMENTS_ONLY`) and the request named \
                 none by hash: it sent a free `query` without `extensions.persistedQuery` \
                 (Apollo Router's code). Nothing ran: no `data`, and HTTP 400 under \
                 `application/graphql-response+json`; over WebSocket the `subscribe` is \
                 refused with it."
            }
            Code::Conflict => {
                "The change conflicts with the stored state: a stale `expectedVersion`, a \
                 closed case, a reused idempotency key, a case that holds the most views or \
                 actions it keeps."
            }
            Code::OutOfScope => {
                "The matter belongs to another procedure: `extensions.exclusion` names the \
                 exclusion and `extensions.redirect` where the matter belongs."
            }
            Code::RateLimited => {
                "Over a rate, cost or in-flight limit of the client (HTTP 429 with \
                 `Retry-After`); over the cost allowance, with `extensions.cost` and \
                 `extensions.retryAfter`."
            }
            Code::ResponseTooLarge => {
                "The response would pass `GRAPHQL_MAX_RESPONSE_BYTES` and was not sent \
                 (`extensions.max`); a change the request made stays made."
            }
            Code::ServiceUnavailable => {
                "The token could not be checked in time, e.g. a slow key-set fetch (HTTP 503 \
                 with `Retry-After`)."
            }
            Code::InternalServerError => {
                "Something failed inside the server: a fixed message and \
                 `extensions.requestId`; the detail is in the server log, never in the \
                 response."
            }
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The codes as string constants, for matching and for building errors
/// outside GraphQL (HTTP refusals). Each is its [`Code`]'s `as_str`.
pub mod code {
    use super::Code;

    /// See [`Code::Unauthenticated`].
    pub const UNAUTHENTICATED: &str = Code::Unauthenticated.as_str();
    /// See [`Code::Forbidden`].
    pub const FORBIDDEN: &str = Code::Forbidden.as_str();
    /// See [`Code::NotFound`].
    pub const NOT_FOUND: &str = Code::NotFound.as_str();
    /// See [`Code::BadUserInput`].
    pub const BAD_USER_INPUT: &str = Code::BadUserInput.as_str();
    /// See [`Code::GraphqlParseFailed`].
    pub const GRAPHQL_PARSE_FAILED: &str = Code::GraphqlParseFailed.as_str();
    /// See [`Code::GraphqlValidationFailed`].
    pub const GRAPHQL_VALIDATION_FAILED: &str = Code::GraphqlValidationFailed.as_str();
    /// See [`Code::OperationResolutionFailure`].
    pub const OPERATION_RESOLUTION_FAILURE: &str = Code::OperationResolutionFailure.as_str();
    /// See [`Code::PersistedQueryNotFound`].
    pub const PERSISTED_QUERY_NOT_FOUND: &str = Code::PersistedQueryNotFound.as_str();
    /// See [`Code::PersistedQueryIdRequired`].
    pub const PERSISTED_QUERY_ID_REQUIRED: &str = Code::PersistedQueryIdRequired.as_str();
    /// See [`Code::Conflict`].
    pub const CONFLICT: &str = Code::Conflict.as_str();
    /// See [`Code::OutOfScope`].
    pub const OUT_OF_SCOPE: &str = Code::OutOfScope.as_str();
    /// See [`Code::RateLimited`].
    pub const RATE_LIMITED: &str = Code::RateLimited.as_str();
    /// See [`Code::ResponseTooLarge`].
    pub const RESPONSE_TOO_LARGE: &str = Code::ResponseTooLarge.as_str();
    /// See [`Code::ServiceUnavailable`].
    pub const SERVICE_UNAVAILABLE: &str = Code::ServiceUnavailable.as_str();
    /// See [`Code::InternalServerError`].
    pub const INTERNAL_SERVER_ERROR: &str = Code::InternalServerError.as_str();
}

impl ErrorExtensions for ServiceError {
    fn extend(&self) -> Error {
        match self {
            ServiceError::NotFound(what) => Error::new(format!("{what} not found"))
                .extend_with(|_, e| e.set("code", code::NOT_FOUND)),
            ServiceError::BadInput { field, message } => {
                let field = *field;
                Error::new(format!("{field}: {message}")).extend_with(|_, e| {
                    e.set("code", code::BAD_USER_INPUT);
                    e.set("field", field);
                })
            }
            ServiceError::Forbidden { message, allowed } => {
                let Allowed { roles, sides } = allowed;
                let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                let sides: Vec<&str> = sides.iter().map(|s| s.as_str()).collect();
                Error::new(message.clone()).extend_with(move |_, e| {
                    e.set("code", code::FORBIDDEN);
                    e.set("allowedRoles", roles.clone());
                    e.set("allowedSides", sides.clone());
                })
            }
            ServiceError::Conflict(message) => {
                Error::new(message.clone()).extend_with(|_, e| e.set("code", code::CONFLICT))
            }
            ServiceError::OutOfScope { kind, redirect } => {
                let (kind, redirect) = (*kind, redirect.clone());
                Error::new(format!("out of scope ({kind}): {redirect}")).extend_with(move |_, e| {
                    e.set("code", code::OUT_OF_SCOPE);
                    e.set("exclusion", kind);
                    e.set("redirect", redirect.clone());
                })
            }
            ServiceError::InvalidProtocol(problems) => {
                let list: Vec<async_graphql::Value> = problems
                    .iter()
                    .map(|p| {
                        let mut m = async_graphql::indexmap::IndexMap::new();
                        m.insert(async_graphql::Name::new("message"), p.message.clone().into());
                        m.insert(async_graphql::Name::new("path"), p.path.clone().into());
                        m.insert(
                            async_graphql::Name::new("line"),
                            p.line.map_or(async_graphql::Value::Null, Into::into),
                        );
                        m.insert(
                            async_graphql::Name::new("column"),
                            p.column.map_or(async_graphql::Value::Null, Into::into),
                        );
                        async_graphql::Value::Object(m)
                    })
                    .collect();
                Error::new(self.to_string()).extend_with(move |_, e| {
                    e.set("code", code::BAD_USER_INPUT);
                    e.set("field", "definition");
                    e.set("problems", async_graphql::Value::List(list.clone()));
                })
            }
            ServiceError::UnknownProtocol(id) => {
                tracing::error!(protocol.id = %id, "a case names an unknown protocol version");
                Error::new("internal error")
                    .extend_with(|_, e| e.set("code", code::INTERNAL_SERVER_ERROR))
            }
            ServiceError::Db(err) => {
                tracing::error!(error = %err, "database error");
                Error::new("internal error")
                    .extend_with(|_, e| e.set("code", code::INTERNAL_SERVER_ERROR))
            }
            ServiceError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                Error::new("internal error")
                    .extend_with(|_, e| e.set("code", code::INTERNAL_SERVER_ERROR))
            }
        }
    }
}

/// Maps a service result into a GraphQL result with the right code.
pub trait GqlResult<T> {
    /// Converts the error through [`ErrorExtensions`].
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResult<T> for Result<T, ServiceError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.extend())
    }
}

/// A `BAD_USER_INPUT` error naming the argument or input field.
pub fn bad_input(field: &'static str, message: impl Into<String>) -> Error {
    ServiceError::bad_input(field, message).extend()
}

impl<T> GqlResult<T> for Result<T, std::sync::Arc<ServiceError>> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.extend())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::Code;

    /// README's code table: `(code, meaning)` per row of the table under
    /// "## Errors".
    fn readme_rows() -> Vec<(String, String)> {
        let readme = include_str!("../../README.md");
        let section = readme.split("\n## Errors\n").nth(1).expect("README has ## Errors");
        let section = section.split("\n## ").next().unwrap_or(section);
        section
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
                assert_eq!(cells.len(), 2, "a row is `| code | meaning |`: {l}");
                (cells[0].trim_matches('`').to_owned(), cells[1].to_owned())
            })
            .collect()
    }

    #[test]
    fn readme_lists_every_code_with_its_description_and_no_other() {
        let rows = readme_rows();
        let codes: Vec<(String, String)> =
            Code::ALL.iter().map(|c| (c.as_str().to_owned(), c.description().to_owned())).collect();
        for (code, meaning) in &codes {
            let row = rows.iter().find(|(c, _)| c == code);
            assert_eq!(
                row.map(|(_, m)| m.as_str()),
                Some(meaning.as_str()),
                "README's row for {code} differs from Code::description"
            );
        }
        for (code, _) in &rows {
            assert!(codes.iter().any(|(c, _)| c == code), "README lists {code}, which is no Code");
        }
        assert_eq!(rows.len(), codes.len(), "README lists a code twice");
    }

    #[test]
    fn every_variant_is_in_all() {
        // A new variant fails to compile here until it is placed, and then
        // fails this test until it is in `Code::ALL` (and so in README).
        let index = |c: Code| match c {
            Code::Unauthenticated => 0,
            Code::Forbidden => 1,
            Code::NotFound => 2,
            Code::BadUserInput => 3,
            Code::GraphqlParseFailed => 4,
            Code::GraphqlValidationFailed => 5,
            Code::OperationResolutionFailure => 6,
            Code::PersistedQueryNotFound => 7,
            Code::PersistedQueryIdRequired => 8,
            Code::Conflict => 9,
            Code::OutOfScope => 10,
            Code::RateLimited => 11,
            Code::ResponseTooLarge => 12,
            Code::ServiceUnavailable => 13,
            Code::InternalServerError => 14,
        };
        for (i, c) in Code::ALL.iter().enumerate() {
            assert_eq!(index(*c), i, "{c}");
        }
    }

    #[test]
    fn codes_are_distinct_screaming_snake_case() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(s.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{s}");
            assert!(seen.insert(s), "{s} twice");
        }
    }
}
