//! The one error type of the service layer. The GraphQL layer maps each
//! variant to an `extensions.code` in `graphql/error.rs`.

use sea_orm::DbErr;

use crate::domain::access::Allowed;

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
    /// The caller's role or side may not make this change.
    #[error("{message}")]
    Forbidden {
        /// What was refused, and why.
        message: String,
        /// Who may (the roles and sides), for `extensions`.
        allowed: Allowed,
    },
    /// The change conflicts with the stored state (a stale version, a
    /// closed case, a concurrent change).
    #[error("{0}")]
    Conflict(String),
    /// The matter belongs to another procedure.
    #[error("{kind}: {redirect}")]
    OutOfScope {
        /// The exclusion.
        kind: &'static str,
        /// Where it belongs instead.
        redirect: String,
    },
    /// A protocol definition sent to be published has problems (every one,
    /// located); nothing was stored.
    #[error("the protocol definition has {} problem(s)", .0.len())]
    InvalidProtocol(Vec<crate::domain::definition::Located>),
    /// A stored case names a protocol version this server does not have.
    #[error("unknown protocol {0}")]
    UnknownProtocol(String),
    /// A database failure; the detail is logged, never shown.
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A failure inside the server that is not the database's (a stored
    /// value that does not read back, a backend without an implementation);
    /// the detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::domain::access::Refusal> for ServiceError {
    fn from(refusal: crate::domain::access::Refusal) -> Self {
        crate::domain::workflow::WorkflowError::from(refusal).into()
    }
}

impl From<crate::domain::access::FeedbackRefusal> for ServiceError {
    fn from(refusal: crate::domain::access::FeedbackRefusal) -> Self {
        use crate::domain::access::FeedbackRefusal as F;
        match refusal {
            F::NotVisible => Self::NotFound("case"),
            F::Open => Self::Conflict(refusal.to_string()),
            F::NoRole | F::NoAgency => {
                Self::forbidden(refusal.to_string(), refusal.allowed().unwrap_or_default())
            }
        }
    }
}

impl From<crate::domain::family_told::FamilyToldError> for ServiceError {
    fn from(err: crate::domain::family_told::FamilyToldError) -> Self {
        use crate::domain::access::FamilyToldRefusal as R;
        use crate::domain::family_told::FamilyToldError as E;
        match err {
            E::Refused(R::NotVisible) => Self::NotFound("case"),
            E::Refused(r @ R::NoRule { .. }) => Self::bad_input("caseId", r.to_string()),
            E::Refused(r @ R::Closed) => Self::Conflict(r.to_string()),
            E::Refused(r) => Self::forbidden(r.to_string(), r.allowed().unwrap_or_default()),
            E::BadDate(message) => Self::BadInput { field: "toldOn", message },
            e @ E::AlreadyRecorded(_) => Self::Conflict(e.to_string()),
        }
    }
}

impl From<crate::domain::step_down::StepDownError> for ServiceError {
    fn from(err: crate::domain::step_down::StepDownError) -> Self {
        use crate::domain::access::StepDownRefusal as R;
        use crate::domain::step_down::StepDownError as E;
        match err {
            E::Refused(R::NotVisible) => Self::NotFound("case"),
            E::Refused(r @ R::NoRule { .. }) => Self::bad_input("caseId", r.to_string()),
            E::Refused(r) => Self::forbidden(r.to_string(), r.allowed().unwrap_or_default()),
            E::BadDate(message) => Self::BadInput { field: "conferenceOn", message },
            e @ (E::AlreadyRecorded(_)
            | E::AlreadyChecked(_)
            | E::NotRecorded
            | E::NotYetDue(_)) => Self::Conflict(e.to_string()),
            E::FollowUp(e) => e.into(),
        }
    }
}

impl From<crate::domain::workflow::WorkflowError> for ServiceError {
    fn from(err: crate::domain::workflow::WorkflowError) -> Self {
        use crate::domain::access::Refusal;
        use crate::domain::workflow::WorkflowError as W;
        match err {
            W::Refused(Refusal::NotVisible) => Self::NotFound("case"),
            W::Refused(
                r @ (Refusal::Closed
                | Refusal::LastStage
                | Refusal::AlreadyAcknowledged(_)
                | Refusal::AlreadyCompleted),
            ) => Self::Conflict(r.to_string()),
            W::Refused(r) => {
                Self::Forbidden { message: r.to_string(), allowed: r.allowed().unwrap_or_default() }
            }
            W::OutOfScope { kind, redirect } => Self::OutOfScope { kind, redirect },
            W::BadInput { field, message } => Self::BadInput { field, message },
            W::Calendar(e) => Self::BadInput { field: "deadline", message: e.to_string() },
        }
    }
}

impl ServiceError {
    /// A refusal of the caller's role or side, with who may.
    pub fn forbidden(message: impl Into<String>, allowed: Allowed) -> Self {
        Self::Forbidden { message: message.into(), allowed }
    }

    /// A bad-input error for one field.
    pub fn bad_input(field: &'static str, message: impl Into<String>) -> Self {
        Self::BadInput { field, message: message.into() }
    }
}
