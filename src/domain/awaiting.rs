//! Who must act next on a case: `Case.awaiting`, and each person's queue
//! (`myQueue`), by one rule.
//!
//! - A closed case awaits nobody.
//! - At a stage with milestones whose next open milestone's clock has
//!   started, the case awaits that milestone: its side, the roles the
//!   protocol names as owing it, by its due day. The action awaited is the
//!   record that completes it (`add_record`).
//! - Otherwise (a stage without milestones, or every milestone met, or the
//!   next one waiting on a clock that has not started) it awaits the
//!   stage's leads on each side (`raising_lead`, `receiving_lead`), to
//!   resolve or escalate, by the case's due day. A lead role that acts for
//!   the board (a board chair) is awaited for the board, not a side.
//!
//! Every role awaited is one that [`crate::domain::access::check`] lets
//! take the awaited action, for that side, on the case as it is: the same
//! rule as `viewerCan`, so a front end never shows a case as waiting on
//! someone whose button is missing. A lead whose role may take none of the
//! actions is left out; where no role is left for a side, that side is not
//! awaited.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::access::{CaseFacts, check};
use super::actor::Actor;
use super::ids::AgencyId;
use super::milestone::Milestone;
use super::policy::{Action, Side};
use super::protocol::Protocol;
use super::role::Role;

/// Whom a case waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Party {
    /// The raising agency.
    Raising,
    /// The receiving agency.
    Receiving,
    /// The board (its chair), for the partnership.
    Board,
}

impl Party {
    /// The agency of this party on the case (none for the board).
    pub fn agency(self, case: &CaseFacts<'_>) -> Option<AgencyId> {
        match self {
            Party::Raising => Some(case.raising),
            Party::Receiving => Some(case.receiving),
            Party::Board => None,
        }
    }

    /// The stored and GraphQL spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Party::Raising => "raising",
            Party::Receiving => "receiving",
            Party::Board => "board",
        }
    }
}

/// One party the case waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Awaited<'p> {
    /// Who.
    pub party: Party,
    /// The roles of that party that may act (sorted, never empty).
    pub roles: Vec<Role>,
    /// The milestone owed, where the case waits on one.
    pub milestone: Option<&'p Milestone>,
    /// By when.
    pub due_on: Option<NaiveDate>,
}

/// The next open milestone of the case's stage with its due day, as
/// `milestone::next_open` gives it.
#[derive(Debug, Clone, Copy)]
pub struct Next<'p> {
    /// The milestone.
    pub milestone: &'p Milestone,
    /// Its due day (`None` while its clock has not started).
    pub due_on: Option<NaiveDate>,
}

/// A stand-in caller with `role` acting for `party` on the case.
fn stand_in(case: &CaseFacts<'_>, role: Role, party: Party) -> Actor {
    Actor {
        issuer: String::new(),
        sub: String::new(),
        role: Some(role),
        scopes: BTreeSet::new(),
        partnership: case.partnership,
        agency: party.agency(case),
    }
}

/// Whom the case waits on (see the module documentation), in the order
/// raising, receiving, board.
pub fn awaiting<'p>(
    protocol: &'p Protocol,
    case: &CaseFacts<'_>,
    next: Option<Next<'p>>,
    due_on: Option<NaiveDate>,
) -> Vec<Awaited<'p>> {
    if !case.open {
        return Vec::new();
    }
    let Some(stage) = protocol.stage(case.route, case.stage) else { return Vec::new() };
    let may = |role: Role, party: Party, actions: &[Action]| {
        let actor = stand_in(case, role, party);
        actions.iter().any(|&a| check(protocol, case, &actor, a).is_ok())
    };
    if let Some(Next { milestone, due_on: Some(due) }) = next {
        let party = match milestone.side() {
            Side::Receiving => Party::Receiving,
            Side::Raising | Side::Either => Party::Raising,
        };
        let mut roles: Vec<Role> = milestone
            .roles()
            .iter()
            .copied()
            .filter(|&r| may(r, party, &[Action::AddRecord]))
            .collect();
        roles.sort();
        roles.dedup();
        if !roles.is_empty() {
            return vec![Awaited { party, roles, milestone: Some(milestone), due_on: Some(due) }];
        }
    }
    let moves = [Action::Resolve, Action::Escalate];
    let mut out: Vec<Awaited<'p>> = Vec::new();
    let mut push = |party: Party, role: Role| {
        if !may(role, party, &moves) {
            return;
        }
        match out.iter_mut().find(|a| a.party == party) {
            Some(a) => {
                if !a.roles.contains(&role) {
                    a.roles.push(role);
                    a.roles.sort();
                }
            }
            None => out.push(Awaited { party, roles: vec![role], milestone: None, due_on }),
        }
    };
    for (side, lead) in
        [(Party::Raising, stage.raising_lead()), (Party::Receiving, stage.receiving_lead())]
    {
        for &role in lead.roles() {
            push(if role.acts_for_board() { Party::Board } else { side }, role);
        }
    }
    out.sort_by_key(|a| a.party);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::catalog::Catalog;
    use crate::domain::ids::PartnershipId;
    use crate::domain::role::Scope;

    struct Parties {
        partnership: PartnershipId,
        raising: AgencyId,
        receiving: AgencyId,
    }

    fn parties() -> Parties {
        Parties {
            partnership: PartnershipId::new(),
            raising: AgencyId::new(),
            receiving: AgencyId::new(),
        }
    }

    fn facts<'a>(p: &Parties, route: &'a str, stage: &'a str, open: bool) -> CaseFacts<'a> {
        CaseFacts {
            partnership: p.partnership,
            raising: p.raising,
            receiving: p.receiving,
            route,
            stage,
            open,
            acknowledged: false,
            participants: &[],
        }
    }

    /// A caller as a token makes one: a person of an agency, or a board
    /// chair with no agency.
    fn person(p: &Parties, role: Role, agency: Option<AgencyId>) -> Actor {
        Actor {
            issuer: "https://idp.example".into(),
            sub: "someone".into(),
            role: Some(role),
            scopes: BTreeSet::from([Scope::CasesRead]),
            partnership: p.partnership,
            agency,
        }
    }

    /// For every protocol, route and stage of `policy.matrix`, with and
    /// without an open milestone: an open case always waits on someone;
    /// each role awaited may take the awaited action as `viewerCan` (that
    /// is, `check`) says for a caller of that role and party; and each lead
    /// role that may resolve or escalate is awaited, on its party.
    #[test]
    fn awaiting_agrees_with_viewer_can_at_every_stage_of_every_protocol() {
        let catalog = Catalog::builtin().unwrap();
        let p = parties();
        let day = NaiveDate::from_ymd_opt(2027, 6, 7).unwrap();
        let mut stages = 0;
        for protocol in catalog.all() {
            for route in protocol.routes() {
                for stage in route.stages() {
                    stages += 1;
                    let case = facts(&p, route.id(), stage.key(), true);
                    let mut nexts: Vec<Option<Next<'_>>> = vec![None];
                    nexts.extend(
                        stage
                            .milestones()
                            .iter()
                            .map(|m| Some(Next { milestone: m, due_on: Some(day) })),
                    );
                    for next in nexts {
                        let got = awaiting(protocol, &case, next, Some(day));
                        let at = format!(
                            "{} {} {} {:?}",
                            protocol.id(),
                            route.id(),
                            stage.key(),
                            next.map(|n| n.milestone.key())
                        );
                        assert!(!got.is_empty(), "an open case waits on someone: {at}");
                        for a in &got {
                            assert!(!a.roles.is_empty(), "{at}");
                            let actions: &[Action] = if a.milestone.is_some() {
                                &[Action::AddRecord]
                            } else {
                                &[Action::Resolve, Action::Escalate]
                            };
                            for &role in &a.roles {
                                let caller = person(&p, role, a.party.agency(&case));
                                assert!(
                                    actions
                                        .iter()
                                        .any(|&x| check(protocol, &case, &caller, x).is_ok()),
                                    "{at}: {role:?} of {:?} is awaited but may not act",
                                    a.party
                                );
                            }
                        }
                        if next.is_none() {
                            for (side, lead) in [
                                (Party::Raising, stage.raising_lead()),
                                (Party::Receiving, stage.receiving_lead()),
                            ] {
                                for &role in lead.roles() {
                                    let party =
                                        if role.acts_for_board() { Party::Board } else { side };
                                    let caller = person(&p, role, party.agency(&case));
                                    let moves = [Action::Resolve, Action::Escalate]
                                        .iter()
                                        .any(|&x| check(protocol, &case, &caller, x).is_ok());
                                    let listed = got
                                        .iter()
                                        .any(|a| a.party == party && a.roles.contains(&role));
                                    assert_eq!(listed, moves, "{at}: lead {role:?} of {party:?}");
                                }
                            }
                        }
                    }
                    assert!(
                        awaiting(
                            protocol,
                            &facts(&p, route.id(), stage.key(), false),
                            None,
                            Some(day)
                        )
                        .is_empty()
                    );
                }
            }
        }
        assert!(stages > 30, "every stage of every protocol: {stages}");
    }

    #[test]
    fn rotherhams_stage_1_challenge_waits_on_the_form_then_the_response() {
        let catalog = Catalog::builtin().unwrap();
        let rh = catalog.latest("rotherham").unwrap();
        let p = parties();
        let case = facts(&p, "challenge", "stage-1", true);
        let stage = rh.stage("challenge", "stage-1").unwrap();
        let [form, response] = stage.milestones() else { panic!("two milestones") };
        let day = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        let got = awaiting(rh, &case, Some(Next { milestone: form, due_on: Some(day) }), Some(day));
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].party, got[0].milestone.map(Milestone::key)),
            (Party::Raising, Some("form"))
        );
        assert_eq!(got[0].roles, [Role::SafeguardingLead]);
        let got =
            awaiting(rh, &case, Some(Next { milestone: response, due_on: Some(day) }), Some(day));
        assert_eq!(
            (got[0].party, got[0].milestone.map(Milestone::key)),
            (Party::Receiving, Some("response"))
        );
        // A milestone whose clock has not started is not waited on: the leads are.
        let got = awaiting(rh, &case, Some(Next { milestone: response, due_on: None }), None);
        assert!(got.iter().all(|a| a.milestone.is_none()), "{got:?}");
    }

    #[test]
    fn a_board_stage_waits_on_the_board() {
        let catalog = Catalog::builtin().unwrap();
        let wb = catalog.latest("western-bay").unwrap();
        let p = parties();
        let got = awaiting(wb, &facts(&p, "main", "stage-4", true), None, None);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!((got[0].party, got[0].roles.clone()), (Party::Board, vec![Role::BoardChair]));
        let got = awaiting(wb, &facts(&p, "main", "stage-1", true), None, None);
        let parties: Vec<Party> = got.iter().map(|a| a.party).collect();
        assert_eq!(parties, [Party::Raising, Party::Receiving], "{got:?}");
    }
}
