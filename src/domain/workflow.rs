//! Case state transitions: what raising, escalating, resolving and
//! withdrawing a case does, and when each is refused. Pure: the service
//! layer loads the facts, calls these, and stores the result with its audit
//! event in one transaction.

use chrono::NaiveDate;

use super::access::{CaseFacts, Refusal, check};
use super::actor::Actor;
use super::calendar::{Calendar, CalendarError};
use super::policy::{Action, Decision, decide};
use super::protocol::{ExclusionKind, Protocol};

/// Why a change is refused, before anything is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    /// Not allowed for this caller (see [`Refusal`]).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The matter belongs to another procedure.
    #[error("{kind}: this protocol does not cover it; {redirect}")]
    OutOfScope {
        /// The exclusion.
        kind: &'static str,
        /// Where it belongs instead.
        redirect: String,
    },
    /// An input breaks a rule of its form.
    #[error("{field}: {message}")]
    BadInput {
        /// The input field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The deadline calendar cannot answer.
    #[error("deadline: {0}")]
    Calendar(#[from] CalendarError),
}

fn bad(field: &'static str, message: impl Into<String>) -> WorkflowError {
    WorkflowError::BadInput { field, message: message.into() }
}

/// Why a case goes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscalationReason {
    /// The stage did not resolve it.
    Unresolved,
    /// The stage's time limit has passed.
    Overdue,
    /// A child may be at immediate risk (needed to start higher or skip).
    ImmediateRisk,
}

impl EscalationReason {
    /// Stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unresolved => "unresolved",
            Self::Overdue => "overdue",
            Self::ImmediateRisk => "immediate_risk",
        }
    }
}

/// A request to raise a case, already parsed.
#[derive(Debug, Clone)]
pub struct RaiseCase<'a> {
    /// The receiving agency differs from the caller's?
    pub same_agency: bool,
    /// Subject category key.
    pub category: &'a str,
    /// Route id (`None`: the protocol's first route).
    pub route: Option<&'a str>,
    /// Stage key to start at (`None`: the route's first entry stage).
    pub stage: Option<&'a str>,
    /// Why starting above the entry stage cannot wait.
    pub immediate_risk_justification: Option<&'a str>,
    /// Matters the raiser declared (the exclusion triage).
    pub declared: &'a [ExclusionKind],
}

/// Where a new case starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaisePlan {
    /// Route id.
    pub route: String,
    /// Stage key.
    pub stage: String,
    /// When the first stage is due, if it has a time limit.
    pub due_on: Option<NaiveDate>,
}

fn due_on(
    protocol: &Protocol,
    route: &str,
    stage: &str,
    today: NaiveDate,
) -> Result<Option<NaiveDate>, WorkflowError> {
    let Some(days) = protocol.stage(route, stage).and_then(|s| s.time_limit_working_days()) else {
        return Ok(None);
    };
    let calendar = Calendar::for_id(protocol.calendar())?;
    Ok(Some(calendar.add_working_days(today, days)?))
}

/// Plans a new case: refuses excluded matters with where they belong,
/// checks the route, stage and role, and computes the first due date.
pub fn plan_raise(
    protocol: &Protocol,
    actor: &Actor,
    cmd: &RaiseCase<'_>,
    today: NaiveDate,
) -> Result<RaisePlan, WorkflowError> {
    if cmd.same_agency {
        let redirect = protocol
            .exclusion(ExclusionKind::IntraAgency)
            .map(|e| e.redirect().to_owned())
            .unwrap_or_else(|| "use your agency's own procedure for internal disagreements".into());
        return Err(WorkflowError::OutOfScope {
            kind: ExclusionKind::IntraAgency.as_str(),
            redirect,
        });
    }
    for &kind in cmd.declared {
        if let Some(ex) = protocol.exclusion(kind) {
            return Err(WorkflowError::OutOfScope {
                kind: kind.as_str(),
                redirect: ex.redirect().to_owned(),
            });
        }
    }
    if protocol.category(cmd.category).is_none() {
        let known: Vec<&str> = protocol.categories().iter().map(|c| c.key()).collect();
        return Err(bad("category", format!("unknown category; one of {}", known.join(", "))));
    }
    let route = match cmd.route {
        Some(id) => protocol.route(id).ok_or_else(|| {
            let known: Vec<&str> = protocol.routes().iter().map(|r| r.id()).collect();
            bad("route", format!("unknown route; one of {}", known.join(", ")))
        })?,
        None => protocol.routes().first().ok_or_else(|| bad("route", "protocol has no route"))?,
    };
    let stage = match cmd.stage {
        Some(key) => route.stage(key).ok_or_else(|| {
            let known: Vec<&str> = route.stages().iter().map(|s| s.key()).collect();
            bad("stage", format!("unknown stage; one of {}", known.join(", ")))
        })?,
        None => route
            .stages()
            .iter()
            .find(|s| s.is_entry())
            .ok_or_else(|| bad("stage", "route has no entry stage"))?,
    };
    let role = actor.role.ok_or(Refusal::NoRole)?;
    if actor.agency.is_none() {
        return Err(bad("raisingAgencyId", "a case is raised by an agency; the token names none"));
    }
    let action = if stage.is_entry() { Action::Raise } else { Action::StartHigher };
    if let Decision::Denied { allowed_roles } =
        decide(protocol, route.id(), stage.key(), role, action)
    {
        return Err(Refusal::Forbidden {
            role,
            action,
            stage: stage.key().to_owned(),
            allowed_roles,
        }
        .into());
    }
    if action == Action::StartHigher
        && cmd.immediate_risk_justification.is_none_or(|j| j.trim().is_empty())
    {
        return Err(bad(
            "immediateRiskJustification",
            "starting above the first stage needs an immediate-risk justification",
        ));
    }
    Ok(RaisePlan {
        route: route.id().to_owned(),
        stage: stage.key().to_owned(),
        due_on: due_on(protocol, route.id(), stage.key(), today)?,
    })
}

/// A request to escalate, already parsed.
#[derive(Debug, Clone)]
pub struct Escalate<'a> {
    /// Why.
    pub reason: EscalationReason,
    /// Target stage (`None`: the next one).
    pub to_stage: Option<&'a str>,
    /// Needed when skipping stages.
    pub immediate_risk_justification: Option<&'a str>,
    /// The timeframe for resolution the escalator states (working days).
    pub timeframe_working_days: Option<u32>,
    /// The current stage's due date.
    pub due_on: Option<NaiveDate>,
}

/// Where an escalation takes a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationPlan {
    /// The new stage key.
    pub stage: String,
    /// Its due date: the protocol's limit, or the stated timeframe.
    pub due_on: Option<NaiveDate>,
    /// Whether the board is told on reaching it.
    pub board_told: bool,
}

/// Plans an escalation: one stage up, or higher with an immediate-risk
/// justification and the roles the protocol allows; `Overdue` only when
/// the stage is overdue; a timeframe where the protocol asks for one.
pub fn plan_escalation(
    protocol: &Protocol,
    case: &CaseFacts<'_>,
    actor: &Actor,
    cmd: &Escalate<'_>,
    today: NaiveDate,
) -> Result<EscalationPlan, WorkflowError> {
    let next = protocol.next_stage(case.route, case.stage);
    let target = match cmd.to_stage {
        None => next.map(|s| s.key()),
        Some(key) => Some(key),
    };
    let skipping = target.is_some() && target != next.map(|s| s.key());
    check(protocol, case, actor, if skipping { Action::SkipStage } else { Action::Escalate })?;
    let target = target.ok_or(Refusal::LastStage)?;
    let (Some(from), Some(to)) = (
        protocol.route(case.route).and_then(|r| r.position(case.stage)),
        protocol.route(case.route).and_then(|r| r.position(target)),
    ) else {
        return Err(bad("toStage", "not a stage of the case's route"));
    };
    if to <= from {
        return Err(bad("toStage", "a case only moves up"));
    }
    if skipping {
        let role = actor.role.ok_or(Refusal::NoRole)?;
        if let Decision::Denied { allowed_roles } =
            decide(protocol, case.route, target, role, Action::StartHigher)
        {
            return Err(Refusal::Forbidden {
                role,
                action: Action::StartHigher,
                stage: target.to_owned(),
                allowed_roles,
            }
            .into());
        }
        if cmd.reason != EscalationReason::ImmediateRisk
            || cmd.immediate_risk_justification.is_none_or(|j| j.trim().is_empty())
        {
            return Err(bad(
                "immediateRiskJustification",
                "skipping a stage needs the immediate-risk reason and a justification",
            ));
        }
    }
    if cmd.reason == EscalationReason::Overdue && cmd.due_on.is_none_or(|d| d >= today) {
        return Err(bad("reason", "the stage is not overdue"));
    }
    let stage =
        protocol.stage(case.route, target).ok_or_else(|| bad("toStage", "unknown stage"))?;
    let states_timeframe =
        protocol.stage(case.route, case.stage).is_some_and(|s| s.escalator_states_timeframe())
            || stage.escalator_states_timeframe();
    if states_timeframe && cmd.timeframe_working_days.is_none() {
        return Err(bad(
            "timeframeWorkingDays",
            "this protocol asks whoever escalates to state the timeframe for resolution",
        ));
    }
    if cmd.timeframe_working_days == Some(0) {
        return Err(bad("timeframeWorkingDays", "must be at least one working day"));
    }
    let due = match (stage.time_limit_working_days(), cmd.timeframe_working_days) {
        (Some(days), _) | (None, Some(days)) => {
            let calendar = Calendar::for_id(protocol.calendar())?;
            Some(calendar.add_working_days(today, days)?)
        }
        (None, None) => None,
    };
    Ok(EscalationPlan { stage: target.to_owned(), due_on: due, board_told: stage.board_told() })
}
