//! Case state transitions: what raising, escalating, resolving and
//! withdrawing a case does, and when each is refused. Pure: the service
//! layer loads the facts, calls these, and stores the result with its audit
//! event in one transaction.

use chrono::NaiveDate;

use super::access::{CaseFacts, Refusal, check};
use super::actor::Actor;
use super::agency::AgencyKind;
use super::calendar::{Calendar, CalendarError};
use super::milestone;
use super::policy::{Action, Decision, allowed_roles, decide};
use super::protocol::{ExclusionKind, Protocol, RecordKind, SkipReason, Stage};
use super::role::Role;

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
    /// Similar disagreements between the same two agencies keep being
    /// raised: the protocol's `repeated_disagreement` rule (Pan-Sussex step
    /// 5) sends the case straight to its stage once enough have been
    /// counted, without an immediate-risk justification.
    RepeatedDisagreement,
}

impl EscalationReason {
    /// Stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unresolved => "unresolved",
            Self::Overdue => "overdue",
            Self::ImmediateRisk => "immediate_risk",
            Self::RepeatedDisagreement => "repeated_disagreement",
        }
    }
}

/// What reaching a stage sets off besides its due date. The service
/// records it with the change (in the audit event); nothing is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaching {
    /// The board or partnership is told (the stage's `board_told`).
    pub board_told: bool,
    /// The stage's milestones whose clocks start with it, and when each is
    /// due (Rotherham's challenge: the form; at stage 3 the director's
    /// notification too).
    pub milestones: Vec<(String, NaiveDate)>,
    /// A request for a conference reaches the stage of Leeds's
    /// `conference_request_backing` rule moved there by one of the roles
    /// that back it (a senior manager or a designated or named
    /// professional): it should normally be agreed.
    pub backed_request: bool,
}

/// `n` working days after `today` in the protocol's calendar.
fn working_days_after(
    protocol: &Protocol,
    today: NaiveDate,
    n: Option<u32>,
) -> Result<Option<NaiveDate>, WorkflowError> {
    let Some(n) = n else { return Ok(None) };
    let calendar = Calendar::for_id(protocol.calendar())?;
    Ok(Some(calendar.add_working_days(today, n)?))
}

fn reaching(
    protocol: &Protocol,
    route: &str,
    stage: &Stage,
    role: Option<Role>,
    today: NaiveDate,
) -> Result<Reaching, WorkflowError> {
    let backing = protocol.rules().conference_request_backing();
    Ok(Reaching {
        backed_request: backing.is_some_and(|r| {
            r.route() == route
                && r.stage() == stage.key()
                && role.is_some_and(|role| r.backed_by().contains(&role))
        }),
        board_told: stage.board_told(),
        milestones: milestone::standings(
            Calendar::for_id(protocol.calendar())?,
            stage.milestones(),
            today,
            &[],
        )?
        .into_iter()
        .filter_map(|s| s.due_on.map(|due| (s.milestone.key().to_owned(), due)))
        .collect(),
    })
}

/// When a stage reached on `today` is due: at a stage with milestones, its
/// first milestone's due date; elsewhere its limit, or else the
/// `timeframe` the escalator stated.
fn stage_due_on(
    protocol: &Protocol,
    stage: &Stage,
    today: NaiveDate,
    timeframe: Option<u32>,
) -> Result<Option<NaiveDate>, WorkflowError> {
    if stage.milestones().is_empty() {
        return working_days_after(protocol, today, stage.time_limit_working_days().or(timeframe));
    }
    let calendar = Calendar::for_id(protocol.calendar())?;
    Ok(milestone::due_on(&milestone::standings(calendar, stage.milestones(), today, &[])?))
}

/// A request to raise a case, already parsed.
#[derive(Debug, Clone)]
pub struct RaiseCase<'a> {
    /// The receiving agency is the caller's own?
    pub same_agency: bool,
    /// The receiving agency's kind (a route may name the kinds it is
    /// raised with).
    pub receiving_kind: AgencyKind,
    /// Subject category key.
    pub category: &'a str,
    /// Route id (`None`: the protocol's first route).
    pub route: Option<&'a str>,
    /// Stage key to start at (`None`: the route's first entry stage).
    pub stage: Option<&'a str>,
    /// Why starting above the entry stage cannot wait.
    pub immediate_risk_justification: Option<&'a str>,
    /// The timeframe for resolution the raiser states (working days):
    /// required where the case starts above the entry stage at a stage
    /// whose escalator states one (Pan-Sussex).
    pub timeframe_working_days: Option<u32>,
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
    /// Whether it starts above an entry stage (immediate risk).
    pub started_higher: bool,
    /// When the first stage is due, if it has a time limit (working days
    /// from `today`).
    pub due_on: Option<NaiveDate>,
    /// What reaching the first stage sets off.
    pub reaching: Reaching,
}

/// Plans a new case: refuses excluded matters with where they belong,
/// checks the route, stage and role, and computes the first due date in
/// working days from `today` (the caller's clock, so tests can fix it).
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
    if !route.admits_receiving(cmd.receiving_kind) {
        let kinds: Vec<String> =
            route.receiving_agency_kinds().iter().map(|k| k.as_str().to_uppercase()).collect();
        return Err(bad(
            "receivingAgencyId",
            format!(
                "a case on the {route} route is raised with an agency of kind {kinds} (the \
                 protocol puts the decision there); this agency is {kind}",
                route = route.id(),
                kinds = kinds.join(" or "),
                kind = cmd.receiving_kind.as_str().to_uppercase(),
            ),
        ));
    }
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
    let action = if stage.is_entry() { Action::Raise } else { Action::StartHigher };
    let role = actor.role.ok_or_else(|| Refusal::NoRole {
        allowed_roles: allowed_roles(protocol, route.id(), stage.key(), action),
    })?;
    if actor.agency.is_none() {
        return Err(bad("raisingAgencyId", "a case is raised by an agency; the token names none"));
    }
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
    if action == Action::StartHigher
        && stage.escalator_states_timeframe()
        && cmd.timeframe_working_days.is_none()
    {
        return Err(bad(
            "timeframeWorkingDays",
            "a case started above the first stage is escalated there, and this protocol asks \
             whoever escalates to state the timeframe for resolution",
        ));
    }
    if cmd.timeframe_working_days == Some(0) {
        return Err(bad("timeframeWorkingDays", "must be at least one working day"));
    }
    Ok(RaisePlan {
        route: route.id().to_owned(),
        stage: stage.key().to_owned(),
        started_higher: action == Action::StartHigher,
        due_on: stage_due_on(protocol, stage, today, cmd.timeframe_working_days)?,
        reaching: reaching(protocol, route.id(), stage, Some(role), today)?,
    })
}

/// Plans a case raised by a rule rather than by a person's `raiseCase`
/// (a step-down check that finds no child-in-need plan starts the
/// challenge again): at `stage` of `route`, with its due date and what
/// reaching it sets off, as [`plan_raise`] computes them, for `role` (who
/// recorded what set it off). The rule is the justification: who may
/// record it was decided by the rule's own check, so neither the raise
/// policy nor an immediate-risk justification is asked, and there is no
/// triage (the case it follows was in scope).
pub fn plan_follow_up(
    protocol: &Protocol,
    route: &str,
    stage: &str,
    role: Option<Role>,
    today: NaiveDate,
) -> Result<RaisePlan, WorkflowError> {
    let stage = protocol
        .stage(route, stage)
        .ok_or_else(|| bad("stage", format!("the {route} route has no stage {stage}")))?;
    Ok(RaisePlan {
        route: route.to_owned(),
        stage: stage.key().to_owned(),
        started_higher: !stage.is_entry(),
        due_on: stage_due_on(protocol, stage, today, None)?,
        reaching: reaching(protocol, route, stage, role, today)?,
    })
}

/// A request to escalate, already parsed.
#[derive(Debug, Clone)]
pub struct Escalate<'a> {
    /// Why.
    pub reason: EscalationReason,
    /// Target stage (`None`: the next one, or the rule's stage for
    /// [`EscalationReason::RepeatedDisagreement`]).
    pub to_stage: Option<&'a str>,
    /// Needed when skipping stages for immediate risk.
    pub immediate_risk_justification: Option<&'a str>,
    /// The timeframe for resolution the escalator states (working days).
    pub timeframe_working_days: Option<u32>,
    /// The current stage's due date.
    pub due_on: Option<NaiveDate>,
    /// For [`EscalationReason::RepeatedDisagreement`]: how many similar
    /// cases the caller counted within the rule's window, this one
    /// included (`None` counts as none). What "similar" means is the
    /// service's: see `service::workflow::similar_cases`.
    pub similar_cases: Option<u32>,
    /// The kinds of record written on the case at its current stage.
    pub recorded_here: &'a [RecordKind],
}

/// Where an escalation takes a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationPlan {
    /// The new stage key.
    pub stage: String,
    /// Its due date: the protocol's limit, or the stated timeframe.
    pub due_on: Option<NaiveDate>,
    /// What reaching it sets off.
    pub reaching: Reaching,
    /// Records the current stage requires before a case leaves it that the
    /// case does not hold: only on an escalation for immediate risk (any
    /// other is refused), to be flagged on the case.
    pub missing_records: Vec<RecordKind>,
}

/// Plans an escalation and computes the new stage's dates in working days
/// from `today` (the caller's clock, so tests can fix it).
///
/// - One stage up: `Escalate` at the current stage.
/// - More than one (immediate risk): `SkipStage` at the current stage,
///   `StartHigher` at the target, the `ImmediateRisk` reason and a
///   justification.
/// - [`EscalationReason::RepeatedDisagreement`]: straight to the stage of
///   the protocol's `repeated_disagreement` rule, on the rule's route, when
///   `similar_cases` reaches the rule's count: `Escalate` at the current
///   stage, and `StartHigher` at the target when that jumps stages; no
///   immediate-risk justification.
/// - `Overdue` only when the stage is overdue; a timeframe where the
///   protocol asks the escalator for one.
pub fn plan_escalation(
    protocol: &Protocol,
    case: &CaseFacts<'_>,
    actor: &Actor,
    cmd: &Escalate<'_>,
    today: NaiveDate,
) -> Result<EscalationPlan, WorkflowError> {
    let next = protocol.next_stage(case.route, case.stage).map(|s| s.key());
    let mut rule = None;
    let target = if cmd.reason == EscalationReason::RepeatedDisagreement {
        check(protocol, case, actor, Action::Escalate)?;
        let r = protocol
            .rules()
            .repeated_disagreement()
            .filter(|r| r.route() == case.route)
            .ok_or_else(|| {
                bad("reason", "this protocol has no repeated-disagreement rule for this route")
            })?;
        if let Some(to) = cmd.to_stage
            && to != r.to_stage()
        {
            return Err(bad(
                "toStage",
                format!("a repeated disagreement goes to {}, not {to}", r.to_stage()),
            ));
        }
        rule = Some(r);
        r.to_stage()
    } else {
        let target = cmd.to_stage.or(next);
        let skipping = target.is_some() && target != next;
        check(protocol, case, actor, if skipping { Action::SkipStage } else { Action::Escalate })?;
        target.ok_or(Refusal::LastStage)?
    };
    let (Some(from), Some(to)) = (
        protocol.route(case.route).and_then(|r| r.position(case.stage)),
        protocol.route(case.route).and_then(|r| r.position(target)),
    ) else {
        return Err(bad("toStage", "not a stage of the case's route"));
    };
    if to <= from {
        return Err(bad("toStage", format!("a case only moves up; it is at {}", case.stage)));
    }
    if Some(target) != next {
        let role = actor.role.ok_or_else(|| Refusal::NoRole {
            allowed_roles: allowed_roles(protocol, case.route, target, Action::StartHigher),
        })?;
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
        // The protocol may name reasons that move a case more than one
        // stage without the immediate-risk justification (Rotherham's
        // challenge: an overdue or unsatisfactory response).
        let named =
            protocol.stage(case.route, case.stage).and_then(|s| s.skip_for()).filter(|skip| {
                let reason = match cmd.reason {
                    EscalationReason::Overdue => Some(SkipReason::Overdue),
                    EscalationReason::Unresolved => Some(SkipReason::Unresolved),
                    _ => None,
                };
                reason.is_some_and(|r| skip.reasons().contains(&r))
                    && protocol
                        .route(case.route)
                        .and_then(|r| r.position(skip.up_to()))
                        .is_some_and(|most| to <= most)
            });
        if rule.is_none()
            && named.is_none()
            && (cmd.reason != EscalationReason::ImmediateRisk
                || cmd.immediate_risk_justification.is_none_or(|j| j.trim().is_empty()))
        {
            let also = protocol
                .stage(case.route, case.stage)
                .and_then(|s| s.skip_for())
                .map(|skip| {
                    let reasons: Vec<&str> = skip
                        .reasons()
                        .iter()
                        .map(|r| match r {
                            SkipReason::Overdue => "OVERDUE",
                            SkipReason::Unresolved => "UNRESOLVED",
                        })
                        .collect();
                    format!(" (or, up to {}, the reason {})", skip.up_to(), reasons.join(" or "))
                })
                .unwrap_or_default();
            return Err(bad(
                "immediateRiskJustification",
                format!(
                    "skipping a stage needs the immediate-risk reason and a justification{also}"
                ),
            ));
        }
    }
    if let Some(rule) = rule {
        let found = cmd.similar_cases.unwrap_or(0);
        if found < rule.count() {
            return Err(bad(
                "reason",
                format!(
                    "a repeated disagreement needs {needed} similar cases (the same two \
                     agencies either way round, the same category, raised in the last {days} \
                     days, this one included, withdrawn ones not counted); there {are} {found}",
                    needed = rule.count(),
                    days = rule.window_days(),
                    are = if found == 1 { "is" } else { "are" },
                ),
            ));
        }
    }
    let missing_records: Vec<RecordKind> = protocol
        .stage(case.route, case.stage)
        .map(|here| here.required_to_leave())
        .unwrap_or_default()
        .iter()
        .filter(|kind| !cmd.recorded_here.contains(kind))
        .copied()
        .collect();
    if !missing_records.is_empty() && cmd.reason != EscalationReason::ImmediateRisk {
        let kinds: Vec<&str> = missing_records.iter().map(|k| k.as_str()).collect();
        return Err(bad(
            "records",
            format!(
                "before a case leaves {stage}, the protocol asks for these records written at \
                 it: {kinds}; add them first (an escalation for immediate risk is not held up, \
                 and the gap is flagged on the case)",
                stage = case.stage,
                kinds = kinds.join(", "),
            ),
        ));
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
    Ok(EscalationPlan {
        stage: target.to_owned(),
        due_on: stage_due_on(protocol, stage, today, cmd.timeframe_working_days)?,
        reaching: reaching(protocol, case.route, stage, actor.role, today)?,
        missing_records,
    })
}

/// Plans the escalation a breach makes by itself, where the protocol turns
/// it on (`escalate_on_breach` at the case's stage): one stage up, reached
/// `today`, its due date from its own limit (nobody states a timeframe),
/// the records the stage requires before leaving that the case does not
/// hold flagged rather than holding it back (as for immediate risk). No
/// role check: the protocol's switch is the permission, and the system
/// makes the change. `None` where the stage has no such switch, has no
/// stage above it, or is not a stage of the route.
pub fn plan_breach_escalation(
    protocol: &Protocol,
    route: &str,
    stage: &str,
    recorded_here: &[RecordKind],
    today: NaiveDate,
) -> Result<Option<EscalationPlan>, WorkflowError> {
    let Some(here) = protocol.stage(route, stage).filter(|s| s.escalate_on_breach()) else {
        return Ok(None);
    };
    let Some(next) = protocol.next_stage(route, stage) else { return Ok(None) };
    let missing_records = here
        .required_to_leave()
        .iter()
        .filter(|kind| !recorded_here.contains(kind))
        .copied()
        .collect();
    Ok(Some(EscalationPlan {
        stage: next.key().to_owned(),
        due_on: stage_due_on(protocol, next, today, None)?,
        reaching: reaching(protocol, route, next, None, today)?,
        missing_records,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::ids::{AgencyId, PartnershipId};
    use crate::domain::protocol::builtin;

    struct World {
        protocols: Vec<Protocol>,
        partnership: PartnershipId,
        raising: AgencyId,
        receiving: AgencyId,
    }

    fn world() -> World {
        World {
            protocols: builtin().unwrap(),
            partnership: PartnershipId::new(),
            raising: AgencyId::new(),
            receiving: AgencyId::new(),
        }
    }

    impl World {
        fn protocol(&self, id: &str) -> &Protocol {
            self.protocols.iter().find(|p| p.id() == id).unwrap()
        }

        fn actor(&self, role: Role, agency: Option<AgencyId>) -> Actor {
            Actor {
                issuer: "i".into(),
                sub: "s".into(),
                role: Some(role),
                scopes: BTreeSet::new(),
                partnership: self.partnership,
                agency,
            }
        }

        fn case<'a>(&self, route: &'a str, stage: &'a str) -> CaseFacts<'a> {
            CaseFacts {
                partnership: self.partnership,
                raising: self.raising,
                receiving: self.receiving,
                route,
                stage,
                open: true,
                acknowledged: false,
                participants: &[],
            }
        }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// The outcome of a row, reduced to what the table compares.
    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        /// Stage and due date (`-` for none).
        To(String, String),
        /// The refusal's field or kind, and a fragment of its message.
        Err(String),
    }

    fn show(date: Option<NaiveDate>) -> String {
        date.map_or_else(|| "-".to_owned(), |d| d.to_string())
    }

    fn err(e: &WorkflowError) -> Got {
        Got::Err(match e {
            WorkflowError::Refused(r) => format!("refused: {r}"),
            WorkflowError::OutOfScope { kind, .. } => format!("out of scope: {kind}"),
            WorkflowError::BadInput { field, message } => format!("{field}: {message}"),
            WorkflowError::Calendar(c) => format!("calendar: {c}"),
        })
    }

    /// One escalation row: protocol, route, stage, role (acting for the
    /// raising agency), reason, target, justification, timeframe, similar
    /// cases, today; then the stage and due date expected, or a fragment
    /// of the refusal.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    fn escalate(
        w: &World,
        (protocol, route, stage): (&str, &str, &str),
        role: Role,
        reason: EscalationReason,
        to_stage: Option<&str>,
        justification: Option<&str>,
        timeframe: Option<u32>,
        similar: Option<u32>,
        today: &str,
        expected: Result<(&str, &str), &str>,
    ) {
        let agency = (role != Role::BoardChair).then_some(w.raising);
        let got = plan_escalation(
            w.protocol(protocol),
            &w.case(route, stage),
            &w.actor(role, agency),
            &Escalate {
                reason,
                to_stage,
                immediate_risk_justification: justification,
                timeframe_working_days: timeframe,
                due_on: None,
                similar_cases: similar,
                recorded_here: &[],
            },
            d(today),
        );
        let got = match &got {
            Ok(plan) => Got::To(plan.stage.clone(), show(plan.due_on)),
            Err(e) => err(e),
        };
        match expected {
            Ok((stage, due)) => assert_eq!(got, Got::To(stage.into(), due.into())),
            Err(fragment) => match &got {
                Got::Err(message) => assert!(
                    message.contains(fragment),
                    "expected a refusal containing {fragment:?}, got {message:?}"
                ),
                Got::To(..) => panic!("expected a refusal containing {fragment:?}, got {got:?}"),
            },
        }
    }

    // One row per call reads as a table; rustfmt would split each call.
    #[rustfmt::skip]
    #[test]
    fn the_repeated_disagreement_trigger() {
        use EscalationReason::*;
        use Role::*;
        let w = world();
        let ps = |stage| ("pan-sussex", "main", stage);
        let thu = "2025-05-01";
        // Count met (3 within 365 days, this one included): straight to step
        // 5, no justification; the stated timeframe sets the due date, in
        // working days across the early-May bank holiday.
        escalate(&w, ps("stage-1"), SafeguardingLead, RepeatedDisagreement, None, None, Some(3), Some(3), thu, Ok(("stage-5", "2025-05-07")));
        escalate(&w, ps("stage-1"), HeadOfService, RepeatedDisagreement, None, None, Some(10), Some(7), thu, Ok(("stage-5", "2025-05-16")));
        escalate(&w, ps("stage-2"), SafeguardingLead, RepeatedDisagreement, Some("stage-5"), None, Some(1), Some(3), thu, Ok(("stage-5", "2025-05-02")));
        // From step 4 it is simply the next step; the count is still checked.
        escalate(&w, ps("stage-4"), SafeguardingLead, RepeatedDisagreement, None, None, Some(5), Some(3), thu, Ok(("stage-5", "2025-05-09")));
        escalate(&w, ps("stage-4"), SafeguardingLead, RepeatedDisagreement, None, None, Some(5), Some(2), thu, Err("reason: a repeated disagreement needs 3 similar cases"));
        // Below the count: refused, saying how many there are and are needed.
        escalate(&w, ps("stage-1"), SafeguardingLead, RepeatedDisagreement, None, None, Some(3), Some(2), thu, Err("needs 3 similar cases (the same two agencies either way round, the same category, raised in the last 365 days, this one included, withdrawn ones not counted); there are 2"));
        escalate(&w, ps("stage-1"), SafeguardingLead, RepeatedDisagreement, None, None, Some(3), Some(1), thu, Err("there is 1"));
        escalate(&w, ps("stage-1"), SafeguardingLead, RepeatedDisagreement, None, None, Some(3), None, thu, Err("there are 0"));
        // Only to the rule's stage.
        escalate(&w, ps("stage-1"), SafeguardingLead, RepeatedDisagreement, Some("stage-6"), None, Some(3), Some(3), thu, Err("toStage: a repeated disagreement goes to stage-5, not stage-6"));
        escalate(&w, ps("stage-1"), SafeguardingLead, RepeatedDisagreement, Some("stage-3"), None, Some(3), Some(3), thu, Err("toStage: a repeated disagreement goes to stage-5"));
        // Already there: nothing above to jump to.
        escalate(&w, ps("stage-5"), BoardChair, RepeatedDisagreement, None, None, Some(3), Some(9), thu, Err("toStage: a case only moves up; it is at stage-5"));
        escalate(&w, ps("stage-6"), BoardChair, RepeatedDisagreement, None, None, Some(3), Some(9), thu, Err("no role may escalate at stage-6"));
        // Roles: escalate at the current step, and start_higher at step 5
        // when it jumps (safeguarding lead, head of service).
        escalate(&w, ps("stage-1"), Practitioner, RepeatedDisagreement, None, None, Some(3), Some(3), thu, Err("refused: a practitioner may not start_higher at stage-5; roles that may: safeguarding_lead, head_of_service"));
        escalate(&w, ps("stage-1"), Manager, RepeatedDisagreement, None, None, Some(3), Some(3), thu, Err("refused: a manager may not start_higher at stage-5"));
        escalate(&w, ps("stage-3"), Manager, RepeatedDisagreement, None, None, Some(3), Some(3), thu, Err("refused: a manager may not escalate at stage-3"));
        escalate(&w, ps("stage-1"), BoardChair, RepeatedDisagreement, None, None, Some(3), Some(3), thu, Err("refused: a board_chair may not escalate at stage-1"));
        // Pan-Sussex asks the escalator for the timeframe, here too.
        escalate(&w, ps("stage-1"), SafeguardingLead, RepeatedDisagreement, None, None, None, Some(3), thu, Err("timeframeWorkingDays: this protocol asks"));
        // Protocols and routes without the rule.
        escalate(&w, ("western-bay", "main", "stage-1"), Manager, RepeatedDisagreement, None, None, None, Some(9), thu, Err("reason: this protocol has no repeated-disagreement rule for this route"));
        escalate(&w, ("rotherham", "practice", "stage-1"), Manager, RepeatedDisagreement, None, None, None, Some(9), thu, Err("reason: this protocol has no repeated-disagreement rule"));
        // Without the reason, a jump to step 5 is the immediate-risk skip.
        escalate(&w, ps("stage-1"), SafeguardingLead, Unresolved, Some("stage-5"), None, Some(3), Some(3), thu, Err("immediateRiskJustification: skipping a stage needs"));
        escalate(&w, ps("stage-1"), SafeguardingLead, ImmediateRisk, Some("stage-5"), Some("child left alone"), Some(3), None, thu, Ok(("stage-5", "2025-05-07")));
        escalate(&w, ps("stage-1"), SafeguardingLead, ImmediateRisk, Some("stage-5"), Some("  "), Some(3), None, thu, Err("immediateRiskJustification"));
    }

    #[rustfmt::skip]
    #[test]
    fn escalations_by_protocol() {
        use EscalationReason::*;
        use Role::*;
        let w = world();
        let thu = "2025-05-01";
        // Rotherham's challenge route: due by the new stage's first
        // milestone (stage 2: the form in 2; stage 3: the director told
        // and the form, each in 1), in working days across the early-May
        // bank holiday (Monday 5 May 2025).
        let ch = |stage| ("rotherham", "challenge", stage);
        escalate(&w, ch("stage-1"), SafeguardingLead, Unresolved, None, None, None, None, thu, Ok(("stage-2", "2025-05-06")));
        escalate(&w, ch("stage-2"), SafeguardingLead, Unresolved, None, None, None, None, thu, Ok(("stage-3", "2025-05-02")));
        escalate(&w, ch("stage-1"), SafeguardingLead, ImmediateRisk, Some("stage-3"), Some("serious"), None, None, thu, Ok(("stage-3", "2025-05-02")));
        escalate(&w, ch("stage-1"), SafeguardingLead, ImmediateRisk, Some("stage-4"), Some("serious"), None, None, thu, Err("refused: no role may start_higher at stage-4"));
        escalate(&w, ch("stage-3"), SafeguardingLead, Unresolved, None, None, None, None, thu, Ok(("stage-4", "-")));
        escalate(&w, ch("stage-2"), Manager, Unresolved, None, None, None, None, thu, Err("refused: a manager may not escalate at stage-2; roles that may: safeguarding_lead"));
        // Outside the calendar's years the deadline cannot be computed.
        escalate(&w, ch("stage-1"), SafeguardingLead, Unresolved, None, None, None, None, "2100-01-04", Err("calendar:"));
        // Leeds's conference-request route into the common tail.
        let cr = |stage| ("leeds", "conference-request", stage);
        escalate(&w, cr("request"), Practitioner, Unresolved, None, None, None, None, thu, Ok(("senior-support", "-")));
        escalate(&w, cr("senior-support"), HeadOfService, Unresolved, None, None, None, None, thu, Ok(("board-representative", "-")));
        escalate(&w, cr("senior-support"), Manager, Unresolved, None, None, None, None, thu, Err("refused: a manager may not escalate at senior-support"));
        escalate(&w, cr("board-representative"), HeadOfService, Unresolved, None, None, None, None, thu, Ok(("board-manager", "-")));
        escalate(&w, cr("board-manager"), BoardChair, Unresolved, None, None, None, None, thu, Ok(("board-chair", "-")));
        escalate(&w, cr("board-chair"), BoardChair, Unresolved, None, None, None, None, thu, Err("no role may escalate at board-chair"));
        escalate(&w, cr("request"), SafeguardingLead, ImmediateRisk, Some("board-manager"), Some("x"), None, None, thu, Err("no role may skip_stage at request"));
        // Seed 004 to the child protection manager; no skipping at all.
        let ss = |stage| ("six-stage", "main", stage);
        escalate(&w, ss("stage-1"), Practitioner, Unresolved, None, None, None, None, thu, Ok(("stage-2", "-")));
        escalate(&w, ss("stage-2"), Practitioner, Unresolved, None, None, None, None, thu, Err("refused: a practitioner may not escalate at stage-2"));
        escalate(&w, ss("stage-3"), Manager, Unresolved, None, None, None, None, thu, Ok(("stage-4", "-")));
        escalate(&w, ss("stage-1"), Manager, ImmediateRisk, Some("stage-4"), Some("x"), None, None, thu, Err("no role may skip_stage at stage-1"));
        // Pan-Sussex: the stated timeframe is the due date.
        let ps = |stage| ("pan-sussex", "main", stage);
        escalate(&w, ps("stage-1"), Practitioner, Unresolved, None, None, Some(3), None, thu, Ok(("stage-2", "2025-05-07")));
        escalate(&w, ps("stage-1"), Practitioner, Unresolved, None, None, None, None, thu, Err("timeframeWorkingDays"));
        escalate(&w, ps("stage-1"), Practitioner, Unresolved, None, None, Some(0), None, thu, Err("timeframeWorkingDays: must be at least one working day"));
        // Overdue needs a passed due date (none here).
        escalate(&w, ps("stage-1"), Practitioner, Overdue, None, None, Some(3), None, thu, Err("reason: the stage is not overdue"));
    }

    #[test]
    fn overdue_is_judged_against_today() {
        let w = world();
        let p = w.protocol("rotherham");
        let case = w.case("challenge", "stage-1");
        let chair = w.actor(Role::SafeguardingLead, Some(w.raising));
        let cmd = |due: &str| Escalate {
            reason: EscalationReason::Overdue,
            to_stage: None,
            immediate_risk_justification: None,
            timeframe_working_days: None,
            due_on: Some(d(due)),
            similar_cases: None,
            recorded_here: &[],
        };
        let on_the_day = plan_escalation(p, &case, &chair, &cmd("2025-05-07"), d("2025-05-07"));
        assert!(matches!(on_the_day, Err(WorkflowError::BadInput { field: "reason", .. })));
        let day_after = plan_escalation(p, &case, &chair, &cmd("2025-05-07"), d("2025-05-08"));
        assert_eq!(day_after.unwrap().stage, "stage-2");
    }

    #[test]
    fn a_stage_may_require_records_before_a_case_leaves_it() {
        use RecordKind::{Analysis, Discussion, Meeting};
        let w = world();
        let p = w.protocol("western-bay");
        let case = w.case("main", "stage-1");
        let manager = w.actor(Role::Manager, Some(w.raising));
        #[track_caller]
        fn check(
            p: &Protocol,
            case: &CaseFacts<'_>,
            who: &Actor,
            reason: EscalationReason,
            recorded: &[RecordKind],
            expected: Result<&[RecordKind], &str>,
        ) {
            let cmd = Escalate {
                reason,
                to_stage: None,
                immediate_risk_justification: Some("the child is at risk tonight"),
                timeframe_working_days: None,
                due_on: None,
                similar_cases: None,
                recorded_here: recorded,
            };
            let got = plan_escalation(p, case, who, &cmd, d("2025-05-01"));
            match (got, expected) {
                (Ok(plan), Ok(missing)) => assert_eq!(plan.missing_records, missing),
                (Err(e), Err(start)) => {
                    let text = e.to_string();
                    assert!(text.starts_with(start), "{text}");
                }
                (got, want) => panic!("got {got:?}, want {want:?}"),
            }
        }
        let (unresolved, urgent) = (EscalationReason::Unresolved, EscalationReason::ImmediateRisk);
        check(p, &case, &manager, unresolved, &[Discussion, Analysis], Ok(&[]));
        check(p, &case, &manager, unresolved, &[Analysis, Meeting, Discussion], Ok(&[]));
        check(
            p,
            &case,
            &manager,
            unresolved,
            &[Discussion],
            Err(
                "records: before a case leaves stage-1, the protocol asks for these records written at it: analysis;",
            ),
        );
        check(
            p,
            &case,
            &manager,
            unresolved,
            &[],
            Err(
                "records: before a case leaves stage-1, the protocol asks for these records written at it: discussion, analysis;",
            ),
        );
        // Immediate risk is never held up: the gap is for the case to show.
        check(p, &case, &manager, urgent, &[], Ok(&[Discussion, Analysis]));
        check(p, &case, &manager, urgent, &[Discussion], Ok(&[Analysis]));
        // The receiving side is refused for its side before any record is
        // asked for.
        let theirs = w.actor(Role::Manager, Some(w.receiving));
        check(
            p,
            &case,
            &theirs,
            unresolved,
            &[],
            Err("at stage-1, only the raising agency may escalate"),
        );
        // Other stages require nothing.
        check(p, &w.case("main", "informal"), &manager, unresolved, &[], Ok(&[]));
    }

    #[test]
    fn what_reaching_a_stage_sets_off() {
        let w = world();
        let p = w.protocol("rotherham");
        let chair = w.actor(Role::SafeguardingLead, Some(w.raising));
        let plan = |route, stage, to: Option<&str>| {
            plan_escalation(
                p,
                &w.case(route, stage),
                &chair,
                &Escalate {
                    reason: if to.is_some() {
                        EscalationReason::ImmediateRisk
                    } else {
                        EscalationReason::Unresolved
                    },
                    to_stage: to,
                    immediate_risk_justification: Some("serious"),
                    timeframe_working_days: None,
                    due_on: None,
                    similar_cases: None,
                    recorded_here: &[],
                },
                d("2025-05-01"),
            )
            .unwrap()
        };
        // Challenge stage 3: the director told within 1 working day and the
        // form within 1 (both clocks start with the stage), the partnership
        // told. (That the family was told is a fact the chair records,
        // `domain::family_told`, not set off here.)
        assert_eq!(
            plan("challenge", "stage-2", None).reaching,
            Reaching {
                board_told: true,
                milestones: vec![
                    ("director".into(), d("2025-05-02")),
                    ("form".into(), d("2025-05-02"))
                ],
                backed_request: false,
            }
        );
        assert_eq!(
            plan("challenge", "stage-1", None).reaching,
            Reaching {
                board_told: false,
                milestones: vec![("form".into(), d("2025-05-06"))],
                backed_request: false,
            }
        );
        // The practice route has no family rule and no forms.
        assert_eq!(
            plan("practice", "stage-3", None).reaching,
            Reaching { board_told: true, milestones: vec![], backed_request: false }
        );
    }

    #[test]
    fn a_backed_conference_request_should_normally_be_agreed() {
        let w = world();
        let p = w.protocol("leeds");
        let escalated = |role, route, stage| {
            plan_escalation(
                p,
                &w.case(route, stage),
                &w.actor(role, Some(w.raising)),
                &Escalate {
                    reason: EscalationReason::Unresolved,
                    to_stage: None,
                    immediate_risk_justification: None,
                    timeframe_working_days: None,
                    due_on: None,
                    similar_cases: None,
                    recorded_here: &[],
                },
                d("2025-05-01"),
            )
            .unwrap()
            .reaching
            .backed_request
        };
        let cr = "conference-request";
        // Moved to senior-support by a designated professional or a senior
        // manager: backed. By the practitioner or their manager: not.
        assert!(escalated(Role::SafeguardingLead, cr, "request"));
        assert!(escalated(Role::HeadOfService, cr, "request"));
        assert!(!escalated(Role::Practitioner, cr, "request"));
        assert!(!escalated(Role::Manager, cr, "request"));
        // Past it, or on another route, the rule says nothing.
        assert!(!escalated(Role::HeadOfService, cr, "senior-support"));
        assert!(!escalated(Role::SafeguardingLead, "referral-enquiry", "first-line-managers"));
        let raised = |role, stage| {
            plan_raise(
                p,
                &w.actor(role, Some(w.raising)),
                &RaiseCase {
                    same_agency: false,
                    receiving_kind: AgencyKind::ChildrensSocialCare,
                    category: "conference-need",
                    route: Some(cr),
                    stage: Some(stage),
                    immediate_risk_justification: None,
                    timeframe_working_days: None,
                    declared: &[],
                },
                d("2025-05-01"),
            )
            .unwrap()
            .reaching
            .backed_request
        };
        assert!(raised(Role::HeadOfService, "senior-support"));
        assert!(!raised(Role::SafeguardingLead, "request"));
    }

    #[test]
    fn a_route_may_name_the_kinds_of_agency_it_is_raised_with() {
        use AgencyKind::*;
        let w = world();
        #[track_caller]
        fn check(
            w: &World,
            protocol: &str,
            route: &str,
            kind: AgencyKind,
            expected: Result<&str, &str>,
        ) {
            let got = plan_raise(
                w.protocol(protocol),
                &w.actor(Role::Practitioner, Some(w.raising)),
                &RaiseCase {
                    same_agency: false,
                    receiving_kind: kind,
                    category: "other",
                    route: Some(route),
                    stage: None,
                    immediate_risk_justification: None,
                    timeframe_working_days: None,
                    declared: &[],
                },
                d("2025-05-01"),
            );
            match (got, expected) {
                (Ok(plan), Ok(stage)) => assert_eq!(plan.stage, stage, "{route} {kind}"),
                (Err(e), Err(fragment)) => {
                    let Got::Err(message) = err(&e) else { unreachable!() };
                    assert!(message.contains(fragment), "{route} {kind}: {message:?}");
                }
                (got, expected) => panic!("{route} {kind}: expected {expected:?}, got {got:?}"),
            }
        }
        let cr = "conference-request";
        // Leeds: the decision to convene a conference rests with children's
        // social care, so the request is raised with it and no one else.
        check(&w, "leeds", cr, ChildrensSocialCare, Ok("request"));
        let refused = "receivingAgencyId: a case on the conference-request route is raised with \
                       an agency of kind CHILDRENS_SOCIAL_CARE (the protocol puts the decision \
                       there); this agency is HEALTH";
        check(&w, "leeds", cr, Health, Err(refused));
        for kind in [Police, Education, Probation, Housing, Voluntary, Other] {
            check(
                &w,
                "leeds",
                cr,
                kind,
                Err("receivingAgencyId: a case on the conference-request"),
            );
        }
        // Leeds's other routes, and the other protocols, name no kind.
        for kind in AgencyKind::ALL {
            check(&w, "leeds", "referral-enquiry", kind, Ok("professionals"));
            check(&w, "leeds", "conference-dissent", kind, Ok("line-management"));
            check(&w, "rotherham", "practice", kind, Ok("stage-1"));
            check(&w, "western-bay", "main", kind, Ok("informal"));
        }
        // The intra-agency exclusion still comes first.
        let same = plan_raise(
            w.protocol("leeds"),
            &w.actor(Role::Practitioner, Some(w.raising)),
            &RaiseCase {
                same_agency: true,
                receiving_kind: Health,
                category: "other",
                route: Some(cr),
                stage: None,
                immediate_risk_justification: None,
                timeframe_working_days: None,
                declared: &[],
            },
            d("2025-05-01"),
        );
        assert!(matches!(same, Err(WorkflowError::OutOfScope { .. })), "{same:?}");
    }

    /// One raise row: protocol, route, stage, role, justification, declared
    /// matters, today; then the stage, due date and form date expected, or
    /// a fragment of the refusal.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    fn raise(
        w: &World,
        protocol: &str,
        route: Option<&str>,
        stage: Option<&str>,
        role: Role,
        justification: Option<&str>,
        declared: &[ExclusionKind],
        today: &str,
        expected: Result<(&str, &str, &str), &str>,
    ) {
        let got = plan_raise(
            w.protocol(protocol),
            &w.actor(role, Some(w.raising)),
            &RaiseCase {
                same_agency: false,
                receiving_kind: AgencyKind::ChildrensSocialCare,
                category: "other",
                route,
                stage,
                immediate_risk_justification: justification,
                timeframe_working_days: None,
                declared,
            },
            d(today),
        );
        match (got, expected) {
            (Ok(plan), Ok((stage, due, form))) => {
                assert_eq!(
                    (
                        plan.stage.as_str(),
                        show(plan.due_on),
                        show(
                            plan.reaching
                                .milestones
                                .iter()
                                .find(|(k, _)| k == "form")
                                .map(|(_, due)| *due)
                        )
                    ),
                    (stage, due.to_owned(), form.to_owned())
                );
                assert_eq!(
                    plan.started_higher,
                    !w.protocol(protocol)
                        .route(&plan.route)
                        .unwrap()
                        .stage(stage)
                        .unwrap()
                        .is_entry()
                );
            }
            (Err(e), Err(fragment)) => {
                let Got::Err(message) = err(&e) else { unreachable!() };
                assert!(message.contains(fragment), "expected {fragment:?}, got {message:?}");
            }
            (got, expected) => panic!("expected {expected:?}, got {got:?}"),
        }
    }

    #[rustfmt::skip]
    #[test]
    fn raising_and_starting_higher() {
        use ExclusionKind::*;
        use Role::*;
        let w = world();
        let thu = "2025-05-01";
        let ch = Some("challenge");
        // Rotherham's conference chair (safeguarding lead): stage 1, or
        // straight to stage 2 or 3 when serious, never 4. The case is due
        // by its first milestone, the form, counted in working days across
        // the early-May bank holiday: Thursday 1 May + 3 => Wednesday 7 May.
        raise(&w, "rotherham", ch, None, SafeguardingLead, None, &[], thu, Ok(("stage-1", "2025-05-07", "2025-05-07")));
        raise(&w, "rotherham", ch, Some("stage-2"), SafeguardingLead, Some("report not shared, conference stood down"), &[], thu, Ok(("stage-2", "2025-05-06", "2025-05-06")));
        raise(&w, "rotherham", ch, Some("stage-3"), SafeguardingLead, Some("fundamental needs unmet"), &[], thu, Ok(("stage-3", "2025-05-02", "2025-05-02")));
        raise(&w, "rotherham", ch, Some("stage-2"), SafeguardingLead, None, &[], thu, Err("immediateRiskJustification"));
        raise(&w, "rotherham", ch, Some("stage-2"), SafeguardingLead, Some(" "), &[], thu, Err("immediateRiskJustification"));
        raise(&w, "rotherham", ch, Some("stage-4"), SafeguardingLead, Some("x"), &[], thu, Err("refused: no role may start_higher at stage-4"));
        raise(&w, "rotherham", ch, Some("stage-2"), Manager, Some("x"), &[], thu, Err("refused: a manager may not start_higher at stage-2; roles that may: safeguarding_lead"));
        raise(&w, "rotherham", ch, None, Practitioner, None, &[], thu, Err("refused: a practitioner may not raise at stage-1"));
        raise(&w, "rotherham", ch, None, SafeguardingLead, None, &[ComplaintAboutProfessional], thu, Err("out of scope: complaint_about_professional"));
        // A justification at an entry stage does not make it a start higher.
        raise(&w, "rotherham", Some("practice"), None, Practitioner, Some("x"), &[], thu, Ok(("stage-1", "-", "-")));
        // Leeds: two entry stages on the conference-request route.
        let cr = Some("conference-request");
        raise(&w, "leeds", cr, None, Practitioner, None, &[], thu, Ok(("request", "-", "-")));
        raise(&w, "leeds", cr, Some("senior-support"), HeadOfService, None, &[], thu, Ok(("senior-support", "-", "-")));
        raise(&w, "leeds", cr, Some("senior-support"), Practitioner, None, &[], thu, Err("refused: a practitioner may not raise at senior-support"));
        raise(&w, "leeds", cr, Some("board-manager"), HeadOfService, Some("x"), &[], thu, Err("refused: no role may start_higher at board-manager"));
        raise(&w, "leeds", Some("nowhere"), None, Practitioner, None, &[], thu, Err("route: unknown route; one of referral-enquiry, conference-request, conference-dissent, protection-plan"));
        // Pan-Sussex: discretion on immediate risk; never at step 6.
        // A case started higher is escalated there, so the timeframe is
        // stated (see `a_case_started_higher_states_its_timeframe`).
        raise(&w, "pan-sussex", None, Some("stage-5"), HeadOfService, Some("x"), &[], thu, Err("timeframeWorkingDays: a case started above the first stage"));
        raise(&w, "pan-sussex", None, Some("stage-6"), HeadOfService, Some("x"), &[], thu, Err("no role may start_higher at stage-6"));
        raise(&w, "pan-sussex", None, None, Practitioner, None, &[ConferenceNonConsensus], thu, Err("out of scope: conference_non_consensus"));
        // Seed 004 and Western Bay: no starting higher.
        raise(&w, "six-stage", None, Some("stage-4"), SafeguardingLead, Some("x"), &[], thu, Err("no role may start_higher at stage-4"));
        raise(&w, "western-bay", None, None, Practitioner, None, &[RegisteredChildUnprotected], thu, Err("out of scope: registered_child_unprotected"));
        // Outside the calendar's years.
        raise(&w, "rotherham", ch, None, SafeguardingLead, None, &[], "2100-01-04", Err("calendar:"));
    }

    #[test]
    fn a_case_started_higher_states_its_timeframe() {
        let w = world();
        let p = w.protocol("pan-sussex");
        let raise = |stage: Option<&str>, timeframe| {
            plan_raise(
                p,
                &w.actor(
                    if stage.is_some() { Role::HeadOfService } else { Role::Practitioner },
                    Some(w.raising),
                ),
                &RaiseCase {
                    same_agency: false,
                    receiving_kind: AgencyKind::ChildrensSocialCare,
                    category: "other",
                    route: None,
                    stage,
                    immediate_risk_justification: stage.map(|_| "immediate risk"),
                    timeframe_working_days: timeframe,
                    declared: &[],
                },
                d("2025-05-01"),
            )
        };
        // Step 5 on immediate risk, with 10 working days stated: due then
        // (the early-May bank holiday skipped).
        assert_eq!(raise(Some("stage-5"), Some(10)).unwrap().due_on, Some(d("2025-05-16")));
        let Err(WorkflowError::BadInput { field, .. }) = raise(Some("stage-5"), None) else {
            panic!("a start higher without a timeframe is refused")
        };
        assert_eq!(field, "timeframeWorkingDays");
        assert!(raise(Some("stage-5"), Some(0)).is_err(), "zero working days");
        // At step 1 nobody has escalated yet: a timeframe is optional, and
        // the stage's due date when given.
        assert_eq!(raise(None, None).unwrap().due_on, None);
        assert_eq!(raise(None, Some(5)).unwrap().due_on, Some(d("2025-05-09")));
    }

    #[test]
    fn an_overdue_or_unsatisfactory_response_skips_stages_where_the_protocol_says() {
        let w = world();
        let p = w.protocol("rotherham");
        let chair = w.actor(Role::SafeguardingLead, Some(w.raising));
        let escalate = |route, reason, to, due_on| {
            plan_escalation(
                p,
                &w.case(route, "stage-1"),
                &chair,
                &Escalate {
                    reason,
                    to_stage: Some(to),
                    immediate_risk_justification: None,
                    timeframe_working_days: None,
                    due_on,
                    similar_cases: None,
                    recorded_here: &[],
                },
                d("2025-05-20"),
            )
            .map(|plan| plan.stage)
        };
        use EscalationReason::{Overdue, Unresolved};
        let past = Some(d("2025-05-19"));
        assert_eq!(escalate("challenge", Overdue, "stage-3", past).unwrap(), "stage-3");
        assert_eq!(escalate("challenge", Unresolved, "stage-3", None).unwrap(), "stage-3");
        // Overdue only when it is.
        assert!(escalate("challenge", Overdue, "stage-3", Some(d("2025-05-21"))).is_err());
        // Not past the data's `up_to`, and not on the practice route.
        let Err(WorkflowError::Refused(_) | WorkflowError::BadInput { .. }) =
            escalate("challenge", Unresolved, "stage-4", None)
        else {
            panic!("stage 4 needs stages 1 to 3 exhausted")
        };
        // The practice route names no such reasons (and its stage 1 lets
        // nobody skip).
        assert!(escalate("practice", Unresolved, "stage-3", None).is_err());
    }

    /// Western Bay with its stage 1 limited to 5 working days and turned to
    /// escalate on breach, and Rotherham's challenge stage 1 likewise.
    fn switched_on() -> (Protocol, Protocol) {
        let wb = include_str!("protocols/western_bay.toml").replacen(
            "required_to_leave = [\"discussion\", \"analysis\"]",
            "required_to_leave = [\"discussion\", \"analysis\"]\ntime_limit_working_days = 5\nescalate_on_breach = true",
            1,
        );
        let rh = include_str!("protocols/rotherham.toml").replacen(
            "time_limit_working_days = 13",
            "time_limit_working_days = 13\nescalate_on_breach = true",
            1,
        );
        (
            crate::domain::protocol::parse_protocol(&wb).unwrap(),
            crate::domain::protocol::parse_protocol(&rh).unwrap(),
        )
    }

    #[rustfmt::skip]
    #[test]
    fn a_breach_escalates_by_itself_only_where_the_protocol_says() {
        use RecordKind::*;
        let w = world();
        let (wb_on, rh_on) = switched_on();
        let seed = |id: &str| w.protocols.iter().find(|p| p.id() == id).unwrap().clone();
        let thu = d("2025-05-01");
        struct Row<'a> {
            protocol: &'a Protocol,
            route: &'a str,
            stage: &'a str,
            recorded: &'a [RecordKind],
            expected: Option<(&'a str, Option<&'a str>, &'a [RecordKind])>,
        }
        let rows = [
            // Every seed leaves it off, at every stage of every route.
            Row { protocol: &seed("western-bay"), route: "main", stage: "stage-1", recorded: &[], expected: None },
            Row { protocol: &seed("rotherham"), route: "challenge", stage: "stage-1", recorded: &[], expected: None },
            // Switched on: one stage up, due by the next stage's own limit
            // (Western Bay's stage 2 has none), the missing records listed.
            Row { protocol: &wb_on, route: "main", stage: "stage-1", recorded: &[], expected: Some(("stage-2", None, &[Discussion, Analysis])) },
            Row { protocol: &wb_on, route: "main", stage: "stage-1", recorded: &[Discussion], expected: Some(("stage-2", None, &[Analysis])) },
            Row { protocol: &wb_on, route: "main", stage: "stage-1", recorded: &[Analysis, Discussion], expected: Some(("stage-2", None, &[])) },
            // Only the switched stage.
            Row { protocol: &wb_on, route: "main", stage: "stage-2", recorded: &[], expected: None },
            Row { protocol: &wb_on, route: "main", stage: "informal", recorded: &[], expected: None },
            // Rotherham's challenge: to stage 2, due by its form (2 working
            // days, across the early-May bank holiday, Monday 5 May 2025).
            Row { protocol: &rh_on, route: "challenge", stage: "stage-1", recorded: &[], expected: Some(("stage-2", Some("2025-05-06"), &[])) },
            Row { protocol: &rh_on, route: "practice", stage: "stage-1", recorded: &[], expected: None },
            // Not a stage of the route.
            Row { protocol: &wb_on, route: "main", stage: "stage-9", recorded: &[], expected: None },
        ];
        for r in rows {
            let got = plan_breach_escalation(r.protocol, r.route, r.stage, r.recorded, thu).unwrap();
            let got = got.map(|p| (p.stage, p.due_on, p.missing_records));
            let want = r.expected.map(|(stage, due, missing)| {
                (stage.to_owned(), due.map(d), missing.to_vec())
            });
            assert_eq!(got, want, "{} {} {} with {:?}", r.protocol.id(), r.route, r.stage, r.recorded);
        }
    }

    #[test]
    fn the_switch_is_refused_where_nothing_can_be_breached_or_nothing_is_above() {
        let wb = include_str!("protocols/western_bay.toml");
        // Western Bay's stage 1 has no time limit.
        let no_limit = wb.replacen(
            "required_to_leave = [\"discussion\", \"analysis\"]",
            "required_to_leave = [\"discussion\", \"analysis\"]\nescalate_on_breach = true",
            1,
        );
        let err = crate::domain::protocol::parse_protocol(&no_limit).unwrap_err().to_string();
        assert!(err.contains("stage-1 escalate_on_breach: the stage has no time limit"), "{err}");
        // The last stage has nothing above it.
        let last = wb.replacen(
            "key = \"stage-4\"",
            "key = \"stage-4\"\ntime_limit_working_days = 3\nescalate_on_breach = true",
            1,
        );
        let err = crate::domain::protocol::parse_protocol(&last).unwrap_err().to_string();
        assert!(err.contains("stage-4 escalate_on_breach: the last stage of a route"), "{err}");
    }
}
