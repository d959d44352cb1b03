//! The one error type of the service layer. The GraphQL layer maps each
//! variant to an `extensions.code` in `graphql/error.rs`.

use sea_orm::DbErr;

/// Why a use case refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The thing asked for does not exist, or is outside the caller's scope
    /// (the two are deliberately indistinguishable).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// An input field is malformed or breaks a rule about its form.
    #[error("{field}: {message}")]
    BadInput {
        /// The input field, as named in the GraphQL schema.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A stored case names a protocol version this server does not have.
    #[error("unknown protocol {0}")]
    UnknownProtocol(String),
    /// A database failure; the detail is logged, never shown.
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl ServiceError {
    /// A bad-input error for one field.
    pub fn bad_input(field: &'static str, message: impl Into<String>) -> Self {
        Self::BadInput { field, message: message.into() }
    }
}
