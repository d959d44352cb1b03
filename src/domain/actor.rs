//! Who is calling, once their token has been verified and their agency and
//! partnership found, and what that lets them see.

use std::collections::BTreeSet;

use super::ids::{AgencyId, PartnershipId};
use super::role::{Role, Scope};

/// A verified caller: a person with a role, a machine client with scopes, or
/// both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The token's `iss`: whose identity provider vouches for `sub`.
    pub issuer: String,
    /// The token's `sub`: the user or client id.
    pub sub: String,
    /// The person's role, if a person is behind the token.
    pub role: Option<Role>,
    /// Machine-client scopes.
    pub scopes: BTreeSet<Scope>,
    /// The partnership the caller belongs to.
    pub partnership: PartnershipId,
    /// The agency the token names (a board chair or a statistics client may
    /// have none). Changes are attributed to [`Actor::acting_agency`], not
    /// to this.
    pub agency: Option<AgencyId>,
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// No token: only the operations the settings open to everyone.
    Anonymous,
    /// A verified token.
    Actor(Actor),
}

/// Which cases a caller may see. Anything outside is reported as not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaseVisibility {
    /// No case at all.
    None,
    /// Every case of one partnership (board chairs).
    Partnership(PartnershipId),
    /// Cases of the partnership where the agency raises or receives.
    Parties {
        /// The caller's partnership.
        partnership: PartnershipId,
        /// The caller's agency.
        agency: AgencyId,
    },
}

impl Actor {
    /// The `sub` of the system's own changes (`actorSub` in the audit
    /// trail).
    pub const SYSTEM_SUB: &'static str = "system:timers";

    /// The server itself, making a change its protocol says happens by
    /// itself (an escalation on breach) to a case of `partnership`: no
    /// role, no agency; it sees the partnership's cases and may do only
    /// what a use case grants it explicitly (every role check refuses it).
    pub fn system(partnership: PartnershipId) -> Self {
        Self {
            issuer: "escalations".to_owned(),
            sub: Self::SYSTEM_SUB.to_owned(),
            role: None,
            scopes: BTreeSet::from([Scope::System]),
            partnership,
            agency: None,
        }
    }

    /// Whether this is the server itself ([`Actor::system`]).
    pub fn is_system(&self) -> bool {
        self.has_scope(Scope::System)
    }

    /// Whether the caller holds a scope.
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// The agency the caller's changes are attributed to: the token's
    /// agency, except for a board chair, who acts for the board (the
    /// partnership), never for an agency, even when the token names one. A
    /// chair's records, actions and audit events carry no agency, and a
    /// chair takes no side of a dispute (records no agency's view; accepts
    /// and withdraws where the protocol names the chair).
    pub fn acting_agency(&self) -> Option<AgencyId> {
        if self.acts_for_board() { None } else { self.agency }
    }

    /// Whether the caller acts for the board rather than an agency (a board
    /// chair).
    pub fn acts_for_board(&self) -> bool {
        self.role.is_some_and(Role::acts_for_board)
    }

    /// The cases this caller may see: a board chair sees the partnership's
    /// cases; a person or a `cases:read` client sees the cases its agency is
    /// party to; a `statistics:read` client sees aggregates only, no case.
    pub fn case_visibility(&self) -> CaseVisibility {
        if self.acts_for_board() || self.is_system() {
            return CaseVisibility::Partnership(self.partnership);
        }
        match self.agency {
            Some(agency) if self.role.is_some() || self.has_scope(Scope::CasesRead) => {
                CaseVisibility::Parties { partnership: self.partnership, agency }
            }
            _ => CaseVisibility::None,
        }
    }
}

impl CaseVisibility {
    /// Whether a case with these parties is visible.
    pub fn allows(
        self,
        partnership: PartnershipId,
        raising: AgencyId,
        receiving: AgencyId,
    ) -> bool {
        match self {
            CaseVisibility::None => false,
            CaseVisibility::Partnership(p) => p == partnership,
            CaseVisibility::Parties { partnership: p, agency } => {
                p == partnership && (agency == raising || agency == receiving)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Row {
        name: &'static str,
        role: Option<Role>,
        scopes: &'static [Scope],
        has_agency: bool,
        // (same partnership?, our agency raising?, our agency receiving?) -> visible
        expected: [bool; 4],
    }

    #[track_caller]
    fn check(row: &Row) {
        let p = PartnershipId::new();
        let other_p = PartnershipId::new();
        let ours = AgencyId::new();
        let (a, b) = (AgencyId::new(), AgencyId::new());
        let actor = Actor {
            issuer: "i".into(),
            sub: "s".into(),
            role: row.role,
            scopes: row.scopes.iter().copied().collect(),
            partnership: p,
            agency: row.has_agency.then_some(ours),
        };
        let v = actor.case_visibility();
        let got = [
            v.allows(p, ours, a),       // we raised it
            v.allows(p, a, ours),       // we received it
            v.allows(p, a, b),          // others' case in our partnership
            v.allows(other_p, ours, a), // another partnership
        ];
        assert_eq!(got, row.expected, "{}", row.name);
    }

    #[test]
    fn who_sees_which_case() {
        let rows = [
            Row {
                name: "practitioner sees own agency's cases only",
                role: Some(Role::Practitioner),
                scopes: &[],
                has_agency: true,
                expected: [true, true, false, false],
            },
            Row {
                name: "head of service likewise",
                role: Some(Role::HeadOfService),
                scopes: &[],
                has_agency: true,
                expected: [true, true, false, false],
            },
            Row {
                name: "board chair sees the partnership",
                role: Some(Role::BoardChair),
                scopes: &[],
                has_agency: false,
                expected: [true, true, true, false],
            },
            Row {
                name: "cases:read client sees its agency's cases",
                role: None,
                scopes: &[Scope::CasesRead],
                has_agency: true,
                expected: [true, true, false, false],
            },
            Row {
                name: "statistics:read client sees no case",
                role: None,
                scopes: &[Scope::StatisticsRead],
                has_agency: true,
                expected: [false, false, false, false],
            },
            Row {
                name: "a role without an agency sees nothing",
                role: Some(Role::Manager),
                scopes: &[],
                has_agency: false,
                expected: [false, false, false, false],
            },
        ];
        for row in &rows {
            check(row);
        }
    }

    #[track_caller]
    fn check_acting(name: &str, role: Option<Role>, has_agency: bool, expected: bool) {
        let ours = AgencyId::new();
        let actor = Actor {
            issuer: "i".into(),
            sub: "s".into(),
            role,
            scopes: BTreeSet::new(),
            partnership: PartnershipId::new(),
            agency: has_agency.then_some(ours),
        };
        assert_eq!(actor.acting_agency(), expected.then_some(ours), "{name}");
    }

    #[test]
    fn changes_are_attributed_to_the_agency_a_caller_acts_for() {
        check_acting("a practitioner acts for their agency", Some(Role::Practitioner), true, true);
        check_acting("a head of service likewise", Some(Role::HeadOfService), true, true);
        check_acting("a client acts for its agency", None, true, true);
        check_acting("a board chair acts for the board", Some(Role::BoardChair), true, false);
        check_acting("a chair without an agency too", Some(Role::BoardChair), false, false);
    }
}
