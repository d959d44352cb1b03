//! The role-by-stage policy: may this role take this action on a case at
//! this stage of this protocol?
//!
//! The answer is protocol data (each stage's `[allow]` table, and the
//! protocol's `read_statistics`); [`decide`] only looks it up, so the same
//! function serves the mutations and a case's `viewerCan`. The expected
//! answers for every built-in protocol are kept in
//! `protocols/policy.matrix`, and a test holds the two equal.
//!
//! Conventions the callers keep (documented in `protocols/README.md`):
//! a skip from stage S to stage T needs `SkipStage` at S *and*
//! `StartHigher` at T; both need an immediate-risk justification, which is
//! the caller's to check.

use std::fmt;

use crate::domain::protocol::Protocol;
use crate::domain::role::Role;

/// Something a role may do to or with a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Open a case at this stage as its first stage, in the normal way
    /// (only at a route's entry stages).
    Raise,
    /// Add a record (discussion, meeting, letter, analysis...) to a case at
    /// this stage.
    AddRecord,
    /// Record an agency's view of the dispute at this stage.
    RecordView,
    /// Agree an action with an owner and a due date at this stage.
    AgreeAction,
    /// Move a case at this stage one stage up.
    Escalate,
    /// For the receiving side's lead: acknowledge a case at this stage.
    Accept,
    /// Resolve a case at this stage.
    Resolve,
    /// Withdraw a case at this stage (the raising side's decision).
    Withdraw,
    /// Open a case directly at this stage, which is not an entry stage,
    /// with an immediate-risk justification; also the target-side check of
    /// a skip.
    StartHigher,
    /// Move a case at this stage more than one stage up (immediate risk).
    SkipStage,
    /// Read the audit trail of a case at this stage.
    ReadAuditTrail,
    /// Read the Resolution of Professional Differences Report of a case at
    /// this stage.
    ReadReport,
    /// Read the partnership's statistics; decided per protocol, not per
    /// stage.
    ReadStatistics,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 13] = [
        Action::Raise,
        Action::AddRecord,
        Action::RecordView,
        Action::AgreeAction,
        Action::Escalate,
        Action::Accept,
        Action::Resolve,
        Action::Withdraw,
        Action::StartHigher,
        Action::SkipStage,
        Action::ReadAuditTrail,
        Action::ReadReport,
        Action::ReadStatistics,
    ];

    /// The snake_case name, as in the data files, e.g. `"start_higher"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Raise => "raise",
            Action::AddRecord => "add_record",
            Action::RecordView => "record_view",
            Action::AgreeAction => "agree_action",
            Action::Escalate => "escalate",
            Action::Accept => "accept",
            Action::Resolve => "resolve",
            Action::Withdraw => "withdraw",
            Action::StartHigher => "start_higher",
            Action::SkipStage => "skip_stage",
            Action::ReadAuditTrail => "read_audit_trail",
            Action::ReadReport => "read_report",
            Action::ReadStatistics => "read_statistics",
        }
    }

    /// The action named `s` exactly, if any.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer of [`decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The role may take the action.
    Allowed,
    /// The role may not; `allowed_roles` are those that may (sorted, maybe
    /// empty), so an error message can name them.
    Denied {
        /// The roles that may take the action here.
        allowed_roles: Vec<Role>,
    },
}

impl Decision {
    /// Whether the decision is [`Decision::Allowed`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed)
    }
}

/// May `role` take `action` on a case at stage `stage` of route `route` of
/// `protocol`?
///
/// An unknown route or stage is denied with an empty list.
/// `ReadStatistics` is partnership-wide: it ignores `route` and `stage`.
pub fn decide(protocol: &Protocol, route: &str, stage: &str, role: Role, action: Action) -> Decision {
    let roles = if action == Action::ReadStatistics {
        protocol.read_statistics()
    } else {
        match protocol.stage(route, stage) {
            Some(stage) => stage.policy().roles(action),
            None => {
                return Decision::Denied {
                    allowed_roles: Vec::new(),
                };
            }
        }
    };
    if roles.contains(&role) {
        Decision::Allowed
    } else {
        let mut allowed_roles = roles.to_vec();
        allowed_roles.sort();
        allowed_roles.dedup();
        Decision::Denied { allowed_roles }
    }
}
