//! The step-down check (Rotherham's `step_down_check` rule, seed 003): "in
//! the event of a decision being made at conference that a Child Protection
//! Plan is no longer required, and it is agreed there will be 'step down'
//! to Child In Need (CiN) planning the Conference Chair will, six weeks
//! post conference, monitor the child's case file to check an appropriate
//! multi-agency CiN meeting has taken place and a relevant CiN Plan is in
//! place. If such is not evidenced, this process to be invoked at Stage 1."
//!
//! Two facts recorded on a case, each by the chair (who may is
//! [`crate::domain::access::may_record_step_down`]; this module adds the
//! dates and the order):
//!
//! - **the step-down**: the day of the conference that decided it, not
//!   after today (it may be before the case was raised: the chair raises a
//!   challenge within days of the conference where the issue came up,
//!   which may be the one that stepped the plan down). The check is due
//!   `after_days` calendar days later ("six weeks": 42), [`check_due_on`].
//!   Until the check is recorded a new day replaces the one shown (a
//!   correction); the day already shown changes nothing and is refused.
//! - **the check**: two findings, whether a multi-agency CiN meeting took
//!   place and whether a CiN plan is in place; the step-down is evidenced
//!   when both hold. Once per step-down, and only after one was recorded.
//!   An evidenced check may come early (the meeting was held and the plan
//!   made before six weeks were up); one that finds either missing only
//!   from the due day on, since until then the meeting may still be held
//!   and the plan still made. A check that is not evidenced raises a new
//!   case at the rule's `restart_stage` ([`CheckPlan::follow_up`]).

use chrono::{Days, NaiveDate};

use super::access::{CaseFacts, StepDownRefusal, may_record_step_down};
use super::actor::Actor;
use super::protocol::{Protocol, StepDownCheck};
use super::workflow::{RaisePlan, WorkflowError, plan_follow_up};

/// Why recording a step-down or its check is refused, before anything is
/// stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepDownError {
    /// Not for this caller or this case (see [`StepDownRefusal`]).
    #[error(transparent)]
    Refused(#[from] StepDownRefusal),
    /// The conference's day breaks a rule (`conferenceOn`).
    #[error("conferenceOn: {0}")]
    BadDate(String),
    /// The case already shows a step-down decided on this day.
    #[error("a step-down is already recorded from the conference of {0}")]
    AlreadyRecorded(NaiveDate),
    /// The step-down was already checked (on this day): its conference and
    /// its check are settled.
    #[error("the step-down was checked on {0}; its conference and its check stay as recorded")]
    AlreadyChecked(NaiveDate),
    /// There is no step-down to check.
    #[error("no step-down is recorded on this case; record the conference's step-down first")]
    NotRecorded,
    /// A check that finds the meeting or the plan missing, before the day
    /// the check is due.
    #[error(
        "the step-down check is due on {0}; until then the CiN meeting may still be held and \
         the CiN plan still made, so only a check that finds both can be recorded"
    )]
    NotYetDue(NaiveDate),
    /// The new case could not be planned (its stage's deadline).
    #[error(transparent)]
    FollowUp(#[from] WorkflowError),
}

/// The step-down a case shows, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The day of the conference that decided it.
    pub conference_on: NaiveDate,
    /// The day it was checked, once it was.
    pub checked_on: Option<NaiveDate>,
}

/// The day the check of a step-down decided at the conference of
/// `conference_on` is due: the rule's `after_days` calendar days later
/// ("six weeks post conference"; not working days).
pub fn check_due_on(rule: &StepDownCheck, conference_on: NaiveDate) -> NaiveDate {
    conference_on
        .checked_add_days(Days::new(u64::from(rule.after_days())))
        .unwrap_or(NaiveDate::MAX)
}

/// Whether `actor` may record a step-down on the case now (whatever the
/// day): the rule's people, until the step-down is checked. `Ok` holds the
/// rule. What `viewerCan.recordStepDown` shows.
pub fn may_record<'p>(
    protocol: &'p Protocol,
    case: &CaseFacts<'_>,
    actor: &Actor,
    recorded: Option<Recorded>,
) -> Result<&'p StepDownCheck, StepDownError> {
    let rule = may_record_step_down(protocol, case, actor)?;
    if let Some(Recorded { checked_on: Some(on), .. }) = recorded {
        return Err(StepDownError::AlreadyChecked(on));
    }
    Ok(rule)
}

/// Whether `actor` may record the check of the case's step-down now
/// (whatever the finding): the rule's people, once a step-down is recorded
/// and until it is checked. `Ok` holds the rule and the step-down. What
/// `viewerCan.recordStepDownCheck` shows (a finding of something missing is
/// refused before the due day, see [`plan_step_down_check`]).
pub fn may_check<'p>(
    protocol: &'p Protocol,
    case: &CaseFacts<'_>,
    actor: &Actor,
    recorded: Option<Recorded>,
) -> Result<(&'p StepDownCheck, Recorded), StepDownError> {
    let rule = may_record_step_down(protocol, case, actor)?;
    let recorded = recorded.ok_or(StepDownError::NotRecorded)?;
    if let Some(on) = recorded.checked_on {
        return Err(StepDownError::AlreadyChecked(on));
    }
    Ok((rule, recorded))
}

/// What recording a step-down does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepDownPlan {
    /// When its check is due.
    pub check_due_on: NaiveDate,
    /// The conference day it replaces, if one was shown.
    pub replaces: Option<NaiveDate>,
}

/// May `actor` record that the conference of `conference_on` decided a
/// step-down, on a case that shows `recorded`, seen on `today` (the
/// caller's clock, so tests can fix it)?
pub fn plan_step_down(
    protocol: &Protocol,
    case: &CaseFacts<'_>,
    actor: &Actor,
    conference_on: NaiveDate,
    recorded: Option<Recorded>,
    today: NaiveDate,
) -> Result<StepDownPlan, StepDownError> {
    let rule = may_record(protocol, case, actor, recorded)?;
    if conference_on > today {
        return Err(StepDownError::BadDate(format!(
            "{conference_on} is in the future; record the step-down once the conference has \
             decided it"
        )));
    }
    let replaces = recorded.map(|r| r.conference_on);
    if replaces == Some(conference_on) {
        return Err(StepDownError::AlreadyRecorded(conference_on));
    }
    Ok(StepDownPlan { check_due_on: check_due_on(rule, conference_on), replaces })
}

/// What the chair found in the child's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Finding {
    /// An appropriate multi-agency CiN meeting has taken place.
    pub cin_meeting_held: bool,
    /// A relevant CiN plan is in place.
    pub cin_plan_in_place: bool,
}

impl Finding {
    /// Both: the step-down is evidenced.
    pub const fn evidenced(self) -> bool {
        self.cin_meeting_held && self.cin_plan_in_place
    }
}

/// What recording a check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckPlan {
    /// The conference of the step-down checked.
    pub conference_on: NaiveDate,
    /// The day the check was due.
    pub check_due_on: NaiveDate,
    /// Whether the step-down is evidenced.
    pub evidenced: bool,
    /// When it is not: the new case, at the rule's `restart_stage`,
    /// between the same two agencies.
    pub follow_up: Option<RaisePlan>,
}

/// May `actor` record the check `finding` of the step-down the case shows
/// (`recorded`), on `today`? When the step-down is not evidenced, the plan
/// holds the new case to raise.
pub fn plan_step_down_check(
    protocol: &Protocol,
    case: &CaseFacts<'_>,
    actor: &Actor,
    finding: Finding,
    recorded: Option<Recorded>,
    today: NaiveDate,
) -> Result<CheckPlan, StepDownError> {
    let (rule, recorded) = may_check(protocol, case, actor, recorded)?;
    let due = check_due_on(rule, recorded.conference_on);
    let evidenced = finding.evidenced();
    if !evidenced && today < due {
        return Err(StepDownError::NotYetDue(due));
    }
    let follow_up = if evidenced {
        None
    } else {
        Some(plan_follow_up(protocol, rule.route(), rule.restart_stage(), actor.role, today)?)
    };
    Ok(CheckPlan { conference_on: recorded.conference_on, check_due_on: due, evidenced, follow_up })
}

/// The summary of the case a check that is not evidenced raises: what the
/// chair found, in the seed's words, and no free text of the case it
/// follows (the two cases may be read by different people in time, and
/// each read of a summary is logged against its own case).
pub fn follow_up_summary(conference_on: NaiveDate, finding: Finding) -> String {
    let missing = match (finding.cin_meeting_held, finding.cin_plan_in_place) {
        (false, false) => "no multi-agency CiN meeting has taken place and no CiN plan is in place",
        (true, false) => "a multi-agency CiN meeting has taken place but no CiN plan is in place",
        (false, true) => "a CiN plan is in place but no multi-agency CiN meeting has taken place",
        (true, true) => "the CiN meeting and plan are evidenced",
    };
    format!(
        "Step-down check: the conference of {conference_on} ended the child protection plan \
         with a step-down to Child in Need planning; six weeks on, {missing}."
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::ids::{AgencyId, PartnershipId};
    use crate::domain::policy::Side;
    use crate::domain::protocol::builtin;
    use crate::domain::role::{Role, Scope};

    struct World {
        protocols: Vec<Protocol>,
        partnership: PartnershipId,
        unit: AgencyId,
        cyps: AgencyId,
        bystander: AgencyId,
    }

    fn world() -> World {
        World {
            protocols: builtin().unwrap(),
            partnership: PartnershipId::new(),
            unit: AgencyId::new(),
            cyps: AgencyId::new(),
            bystander: AgencyId::new(),
        }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn person(w: &World, role: Option<Role>, agency: Option<AgencyId>) -> Actor {
        Actor {
            issuer: "i".into(),
            sub: "s".into(),
            role,
            scopes: BTreeSet::from([Scope::CasesRead]),
            partnership: w.partnership,
            agency,
        }
    }

    fn facts<'a>(w: &World, route: &'a str, stage: &'a str, open: bool) -> CaseFacts<'a> {
        CaseFacts {
            partnership: w.partnership,
            raising: w.unit,
            receiving: w.cyps,
            route,
            stage,
            open,
            acknowledged: false,
            participants: &[],
        }
    }

    /// Today, in every row.
    const TODAY: &str = "2026-05-08";

    fn recorded(conference_on: &str, checked_on: Option<&str>) -> Option<Recorded> {
        Some(Recorded { conference_on: d(conference_on), checked_on: checked_on.map(d) })
    }

    /// One row: the protocol and the case's route, stage and state, who
    /// asks, the conference day, what the case shows, and the answer.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    fn record(
        name: &str,
        w: &World,
        (protocol, route, stage, open): (&str, &str, &str, bool),
        who: &Actor,
        conference_on: &str,
        shown: Option<Recorded>,
        expected: Result<(&str, Option<&str>), StepDownError>,
    ) {
        let protocol = w.protocols.iter().find(|p| p.id() == protocol).unwrap();
        let got = plan_step_down(
            protocol,
            &facts(w, route, stage, open),
            who,
            d(conference_on),
            shown,
            d(TODAY),
        );
        let expected = expected.map(|(due, replaces)| StepDownPlan {
            check_due_on: d(due),
            replaces: replaces.map(d),
        });
        assert_eq!(got, expected, "{name}");
    }

    #[test]
    fn the_conference_chair_records_a_step_down_and_its_check_falls_due_six_weeks_on() {
        use Role::*;
        use StepDownError::*;
        use StepDownRefusal as R;
        let w = world();
        let chair = person(&w, Some(SafeguardingLead), Some(w.unit));
        let challenge = ("rotherham", "challenge", "stage-1", true);
        let recorders = vec![SafeguardingLead];
        record("today", &w, challenge, &chair, TODAY, None, Ok(("2026-06-19", None)));
        record(
            "a conference before the case was raised (42 calendar days, bank holiday or not)",
            &w,
            challenge,
            &chair,
            "2026-04-20",
            None,
            Ok(("2026-06-01", None)),
        );
        record(
            "on a closed case: the step-down often comes after the resolution",
            &w,
            ("rotherham", "challenge", "stage-2", false),
            &chair,
            "2026-05-01",
            None,
            Ok(("2026-06-12", None)),
        );
        record(
            "a correction before the check replaces the day shown",
            &w,
            challenge,
            &chair,
            "2026-05-04",
            recorded("2026-05-01", None),
            Ok(("2026-06-15", Some("2026-05-01"))),
        );
        record(
            "the day already shown",
            &w,
            challenge,
            &chair,
            "2026-05-01",
            recorded("2026-05-01", None),
            Err(AlreadyRecorded(d("2026-05-01"))),
        );
        record(
            "once checked, the step-down stays as recorded",
            &w,
            challenge,
            &chair,
            "2026-05-04",
            recorded("2026-03-01", Some("2026-04-12")),
            Err(AlreadyChecked(d("2026-04-12"))),
        );
        record(
            "tomorrow",
            &w,
            challenge,
            &chair,
            "2026-05-09",
            None,
            Err(BadDate(
                "2026-05-09 is in the future; record the step-down once the conference has \
                 decided it"
                    .into(),
            )),
        );
        record(
            "the practice route has no such rule",
            &w,
            ("rotherham", "practice", "stage-1", true),
            &chair,
            TODAY,
            None,
            Err(Refused(R::NoRule { route: "practice".into() })),
        );
        record(
            "nor has any other protocol",
            &w,
            ("western-bay", "main", "stage-1", true),
            &chair,
            TODAY,
            None,
            Err(Refused(R::NoRule { route: "main".into() })),
        );
        record(
            "the line manager of the agency challenged",
            &w,
            challenge,
            &person(&w, Some(Manager), Some(w.cyps)),
            TODAY,
            None,
            Err(Refused(R::Forbidden { role: Manager, allowed_roles: recorders.clone() })),
        );
        record(
            "a safeguarding lead of the agency challenged: the chair's side records it",
            &w,
            challenge,
            &person(&w, Some(SafeguardingLead), Some(w.cyps)),
            TODAY,
            None,
            Err(Refused(R::WrongSide { side: Side::Raising, allowed_roles: recorders.clone() })),
        );
        record(
            "a board chair is not the conference chair",
            &w,
            challenge,
            &person(&w, Some(BoardChair), None),
            TODAY,
            None,
            Err(Refused(R::Forbidden { role: BoardChair, allowed_roles: recorders.clone() })),
        );
        record(
            "a client records nothing",
            &w,
            challenge,
            &person(&w, None, Some(w.unit)),
            TODAY,
            None,
            Err(Refused(R::NoRole { allowed_roles: recorders.clone() })),
        );
        record(
            "an agency that is no party does not see the case",
            &w,
            challenge,
            &person(&w, Some(SafeguardingLead), Some(w.bystander)),
            TODAY,
            None,
            Err(Refused(R::NotVisible)),
        );
        record(
            "who before when",
            &w,
            challenge,
            &person(&w, Some(Manager), Some(w.cyps)),
            "2030-01-01",
            None,
            Err(Refused(R::Forbidden { role: Manager, allowed_roles: recorders })),
        );
    }

    /// One row of the check: the case's route and state, who asks, the
    /// finding (meeting, plan), what the case shows, and the answer: the
    /// conference, due day and evidenced, and the follow-up's stage and
    /// due date.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    #[track_caller]
    fn check(
        name: &str,
        w: &World,
        (route, open): (&str, bool),
        who: &Actor,
        (cin_meeting_held, cin_plan_in_place): (bool, bool),
        shown: Option<Recorded>,
        expected: Result<(&str, &str, bool, Option<(&str, Option<&str>)>), StepDownError>,
    ) {
        let protocol = w.protocols.iter().find(|p| p.id() == "rotherham").unwrap();
        let got = plan_step_down_check(
            protocol,
            &facts(w, route, "stage-2", open),
            who,
            Finding { cin_meeting_held, cin_plan_in_place },
            shown,
            d(TODAY),
        )
        .map(|p| {
            (
                p.conference_on,
                p.check_due_on,
                p.evidenced,
                p.follow_up.map(|f| (f.route, f.stage, f.started_higher, f.due_on)),
            )
        });
        let expected = expected.map(|(conference, due, evidenced, follow_up)| {
            (
                d(conference),
                d(due),
                evidenced,
                follow_up.map(|(stage, due_on)| {
                    ("challenge".to_owned(), stage.to_owned(), false, due_on.map(d))
                }),
            )
        });
        assert_eq!(got, expected, "{name}");
    }

    #[test]
    fn a_check_that_finds_no_plan_six_weeks_on_starts_the_challenge_again_at_stage_1() {
        use Role::*;
        use StepDownError::*;
        use StepDownRefusal as R;
        let w = world();
        let chair = person(&w, Some(SafeguardingLead), Some(w.unit));
        let challenge = ("challenge", true);
        // The conference of 27 March: due 8 May, today.
        let due_today = recorded("2026-03-27", None);
        // Friday 8 May 2026, then the chair's form within 3 working days:
        // Wednesday 13 May.
        let stage_1 = Some(("stage-1", Some("2026-05-13")));
        check(
            "evidenced on the due day: nothing raised",
            &w,
            challenge,
            &chair,
            (true, true),
            due_today,
            Ok(("2026-03-27", TODAY, true, None)),
        );
        check(
            "evidenced early",
            &w,
            challenge,
            &chair,
            (true, true),
            recorded("2026-05-01", None),
            Ok(("2026-05-01", "2026-06-12", true, None)),
        );
        check(
            "neither, on the due day: stage 1 again",
            &w,
            challenge,
            &chair,
            (false, false),
            due_today,
            Ok(("2026-03-27", TODAY, false, stage_1)),
        );
        check(
            "a meeting but no plan",
            &w,
            challenge,
            &chair,
            (true, false),
            recorded("2026-01-02", None),
            Ok(("2026-01-02", "2026-02-13", false, stage_1)),
        );
        check(
            "a plan but no meeting, on a closed case",
            &w,
            ("challenge", false),
            &chair,
            (false, true),
            due_today,
            Ok(("2026-03-27", TODAY, false, stage_1)),
        );
        check(
            "missing the day before it is due: too early to say",
            &w,
            challenge,
            &chair,
            (false, true),
            recorded("2026-03-28", None),
            Err(NotYetDue(d("2026-05-09"))),
        );
        check("no step-down recorded", &w, challenge, &chair, (true, true), None, Err(NotRecorded));
        check(
            "a second check",
            &w,
            challenge,
            &chair,
            (true, true),
            recorded("2026-03-27", Some("2026-05-08")),
            Err(AlreadyChecked(d(TODAY))),
        );
        check(
            "the practice route has no such rule",
            &w,
            ("practice", true),
            &chair,
            (false, false),
            due_today,
            Err(Refused(R::NoRule { route: "practice".into() })),
        );
        check(
            "the agency challenged does not vouch for its own plan",
            &w,
            challenge,
            &person(&w, Some(SafeguardingLead), Some(w.cyps)),
            (true, true),
            due_today,
            Err(Refused(R::WrongSide {
                side: Side::Raising,
                allowed_roles: vec![SafeguardingLead],
            })),
        );
        check(
            "who before what: a manager with nothing recorded",
            &w,
            challenge,
            &person(&w, Some(Manager), Some(w.unit)),
            (true, true),
            None,
            Err(Refused(R::Forbidden { role: Manager, allowed_roles: vec![SafeguardingLead] })),
        );
    }

    #[test]
    fn the_follow_up_summary_says_what_was_missing() {
        let on = d("2026-03-27");
        let summary =
            |m, p| follow_up_summary(on, Finding { cin_meeting_held: m, cin_plan_in_place: p });
        assert_eq!(
            summary(false, false),
            "Step-down check: the conference of 2026-03-27 ended the child protection plan with \
             a step-down to Child in Need planning; six weeks on, no multi-agency CiN meeting \
             has taken place and no CiN plan is in place."
        );
        assert!(summary(true, false).ends_with("has taken place but no CiN plan is in place."));
        assert!(summary(false, true).ends_with("but no multi-agency CiN meeting has taken place."));
    }

    #[test]
    fn the_check_is_due_forty_two_calendar_days_after_the_conference() {
        let w = world();
        let rule = w
            .protocols
            .iter()
            .find(|p| p.id() == "rotherham")
            .unwrap()
            .rules()
            .step_down_check()
            .unwrap();
        for (conference, due) in [
            ("2026-03-27", "2026-05-08"),
            // Across the clocks going forward and a bank holiday (Easter):
            // calendar days, not working days.
            ("2026-03-02", "2026-04-13"),
            ("2026-12-24", "2027-02-04"),
            ("2028-01-18", "2028-02-29"),
        ] {
            assert_eq!(check_due_on(rule, d(conference)), d(due), "{conference}");
        }
    }
}
