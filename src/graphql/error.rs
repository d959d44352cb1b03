//! The one place where service errors become GraphQL errors with an
//! `extensions.code`. Internal errors are logged here, once, and the client
//! gets a fixed message.
//!
//! Resolvers call `.gql()` on service results rather than `?` alone:
//! async-graphql turns anything `Display` into an error with its text, which
//! would leak database detail.

use async_graphql::{Error, ErrorExtensions};

use crate::service::ServiceError;

/// The codes this API puts in `extensions.code`. They are part of the API.
pub mod code {
    /// No valid token.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// The caller's role may not do this here.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// No such thing, or not visible to the caller.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// An input is malformed or breaks a rule.
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    /// The change conflicts with the stored state.
    pub const CONFLICT: &str = "CONFLICT";
    /// The matter belongs to another procedure.
    pub const OUT_OF_SCOPE: &str = "OUT_OF_SCOPE";
    /// Something failed inside the server; details are in its log.
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
    /// Over a rate, cost or in-flight limit of the client (HTTP 429 with
    /// `Retry-After`).
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// The server could not prepare the request in time through no fault
    /// of the caller's (HTTP 503 with `Retry-After`).
    pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
    /// The response would be larger than `GRAPHQL_MAX_RESPONSE_BYTES`.
    pub const RESPONSE_TOO_LARGE: &str = "RESPONSE_TOO_LARGE";
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
            ServiceError::Forbidden(message) => {
                Error::new(message.clone()).extend_with(|_, e| e.set("code", code::FORBIDDEN))
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
