//! "The family was told" (Rotherham's `family_told` rule): a fact with a
//! date, recorded on the case by the Conference Chair, never assumed. Who
//! may record it is [`crate::domain::access::may_record_family_told`]; this
//! module adds what a date must be.
//!
//! A later recording replaces the date the case shows (a correction, or the
//! family told again of a later escalation: the seed asks that families be
//! aware of *any* challenge escalation); the audit trail keeps every one,
//! with the date it replaced. Recording the date already shown changes
//! nothing and is refused.

use chrono::NaiveDate;

use super::access::{CaseFacts, FamilyToldRefusal, may_record_family_told};
use super::actor::Actor;
use super::protocol::Protocol;

/// Why recording that the family was told is refused, before anything is
/// stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FamilyToldError {
    /// Not for this caller or this case (see [`FamilyToldRefusal`]).
    #[error(transparent)]
    Refused(#[from] FamilyToldRefusal),
    /// The date breaks a rule (`toldOn`).
    #[error("toldOn: {0}")]
    BadDate(String),
    /// The case already shows this date.
    #[error("the family is already recorded as told on {0}")]
    AlreadyRecorded(NaiveDate),
}

/// A request to record that the family was told, with the facts of the
/// case it is judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordFamilyTold {
    /// The day the family was told.
    pub told_on: NaiveDate,
    /// The day the case was raised.
    pub raised_on: NaiveDate,
    /// The date the case shows now, if any.
    pub recorded: Option<NaiveDate>,
}

/// May `actor` record that the family was told on `cmd.told_on`, seen on
/// `today` (the caller's clock, so tests can fix it)? `Ok` holds the date
/// the recording replaces, if any. The family is told of a challenge
/// raised, so not before the case was raised, and not after today.
pub fn plan_family_told(
    protocol: &Protocol,
    case: &CaseFacts<'_>,
    actor: &Actor,
    cmd: &RecordFamilyTold,
    today: NaiveDate,
) -> Result<Option<NaiveDate>, FamilyToldError> {
    may_record_family_told(protocol, case, actor)?;
    if cmd.told_on > today {
        return Err(FamilyToldError::BadDate(format!(
            "{} is in the future; record that the family was told once they have been",
            cmd.told_on
        )));
    }
    if cmd.told_on < cmd.raised_on {
        return Err(FamilyToldError::BadDate(format!(
            "{} is before the case was raised ({}); the family is told of a challenge raised",
            cmd.told_on, cmd.raised_on
        )));
    }
    if cmd.recorded == Some(cmd.told_on) {
        return Err(FamilyToldError::AlreadyRecorded(cmd.told_on));
    }
    Ok(cmd.recorded)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::ids::{AgencyId, PartnershipId};
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

    /// One row: the protocol, the case's route, stage and state, who asks,
    /// the dates (told, raised, already recorded), and the answer.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    fn check(
        name: &str,
        w: &World,
        (protocol, route, stage, open): (&str, &str, &str, bool),
        who: &Actor,
        (told_on, raised_on, recorded): (&str, &str, Option<&str>),
        expected: Result<Option<&str>, FamilyToldError>,
    ) {
        let protocol = w.protocols.iter().find(|p| p.id() == protocol).unwrap();
        let case = CaseFacts {
            partnership: w.partnership,
            raising: w.unit,
            receiving: w.cyps,
            route,
            stage,
            open,
            acknowledged: false,
            participants: &[],
        };
        let cmd = RecordFamilyTold {
            told_on: d(told_on),
            raised_on: d(raised_on),
            recorded: recorded.map(d),
        };
        let got = plan_family_told(protocol, &case, who, &cmd, d("2025-05-08"));
        assert_eq!(got, expected.map(|r| r.map(d)), "{name}");
    }

    #[test]
    fn the_conference_chair_records_when_the_family_was_told() {
        use FamilyToldError::*;
        use FamilyToldRefusal as R;
        use Role::*;
        let w = world();
        let chair = person(&w, Some(SafeguardingLead), Some(w.unit));
        let challenge = ("rotherham", "challenge", "stage-1", true);
        let dates = ("2025-05-06", "2025-05-01", None);
        let recorders = vec![SafeguardingLead];
        check(
            "the chair, on the day",
            &w,
            challenge,
            &chair,
            ("2025-05-08", "2025-05-01", None),
            Ok(None),
        );
        check("the chair, earlier", &w, challenge, &chair, dates, Ok(None));
        check(
            "the day the case was raised",
            &w,
            challenge,
            &chair,
            ("2025-05-01", "2025-05-01", None),
            Ok(None),
        );
        check(
            "at any stage of the route",
            &w,
            ("rotherham", "challenge", "stage-3", true),
            &chair,
            dates,
            Ok(None),
        );
        check(
            "a later date replaces the one shown",
            &w,
            challenge,
            &chair,
            ("2025-05-07", "2025-05-01", Some("2025-05-02")),
            Ok(Some("2025-05-02")),
        );
        check(
            "so does an earlier one (a correction)",
            &w,
            challenge,
            &chair,
            ("2025-05-02", "2025-05-01", Some("2025-05-07")),
            Ok(Some("2025-05-07")),
        );
        check(
            "the date already shown",
            &w,
            challenge,
            &chair,
            ("2025-05-02", "2025-05-01", Some("2025-05-02")),
            Err(AlreadyRecorded(d("2025-05-02"))),
        );
        check(
            "tomorrow",
            &w,
            challenge,
            &chair,
            ("2025-05-09", "2025-05-01", None),
            Err(BadDate(
                "2025-05-09 is in the future; record that the family was told once they have been"
                    .into(),
            )),
        );
        check(
            "before the case was raised",
            &w,
            challenge,
            &chair,
            ("2025-04-30", "2025-05-01", None),
            Err(BadDate(
                "2025-04-30 is before the case was raised (2025-05-01); the family is told of a \
                 challenge raised"
                    .into(),
            )),
        );
        check(
            "the practice route has no such rule",
            &w,
            ("rotherham", "practice", "stage-1", true),
            &chair,
            dates,
            Err(Refused(R::NoRule { route: "practice".into() })),
        );
        check(
            "nor has any other protocol",
            &w,
            ("western-bay", "main", "stage-1", true),
            &chair,
            dates,
            Err(Refused(R::NoRule { route: "main".into() })),
        );
        check(
            "the line manager of the agency challenged",
            &w,
            challenge,
            &person(&w, Some(Manager), Some(w.cyps)),
            dates,
            Err(Refused(R::Forbidden { role: Manager, allowed_roles: recorders.clone() })),
        );
        check(
            "a safeguarding lead of the agency challenged: the chair's side records it",
            &w,
            challenge,
            &person(&w, Some(SafeguardingLead), Some(w.cyps)),
            dates,
            Err(Refused(R::WrongSide {
                side: crate::domain::policy::Side::Raising,
                allowed_roles: recorders.clone(),
            })),
        );
        check(
            "a board chair is not the conference chair",
            &w,
            challenge,
            &person(&w, Some(BoardChair), None),
            dates,
            Err(Refused(R::Forbidden { role: BoardChair, allowed_roles: recorders.clone() })),
        );
        check(
            "a client records nothing",
            &w,
            challenge,
            &person(&w, None, Some(w.unit)),
            dates,
            Err(Refused(R::NoRole { allowed_roles: recorders.clone() })),
        );
        check(
            "an agency that is no party does not see the case",
            &w,
            challenge,
            &person(&w, Some(SafeguardingLead), Some(w.bystander)),
            dates,
            Err(Refused(R::NotVisible)),
        );
        check(
            "a closed case",
            &w,
            ("rotherham", "challenge", "stage-2", false),
            &chair,
            dates,
            Err(Refused(R::Closed)),
        );
        // Who comes before the date: a wrong date from the wrong person is
        // refused for the person.
        check(
            "who before when",
            &w,
            challenge,
            &person(&w, Some(Manager), Some(w.cyps)),
            ("2030-01-01", "2025-05-01", None),
            Err(Refused(R::Forbidden { role: Manager, allowed_roles: recorders })),
        );
    }
}
