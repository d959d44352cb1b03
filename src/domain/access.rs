//! May this caller take this action on this case? One function, [`check`],
//! answers for the mutations and for a case's `viewerCan` alike.
//!
//! It combines, in order: visibility (outside it a case does not exist for
//! the caller), a role, whether the caller acts for a party where the
//! action is only ever a party's ([`needs_a_party`]), the role-by-stage
//! policy of the case's protocol (data, see
//! [`crate::domain::policy::decide`]), the state of the case, and the side
//! rules (which side may take the action at the stage: protocol data,
//! [`crate::domain::policy::side`]).

use super::actor::Actor;
use super::agency::AgencyKind;
use super::ids::{AgencyId, PartnershipId};
pub use super::policy::Side;
use super::policy::{self, Action, Decision, allowed_roles, decide};
use super::protocol::Protocol;
use super::role::Role;

/// The facts about a case that permissions depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseFacts<'a> {
    /// The case's partnership.
    pub partnership: PartnershipId,
    /// The raising agency.
    pub raising: AgencyId,
    /// The receiving agency.
    pub receiving: AgencyId,
    /// The route through the protocol.
    pub route: &'a str,
    /// The current stage key.
    pub stage: &'a str,
    /// Whether the case is still open.
    pub open: bool,
    /// Whether the receiving side acknowledged it at its current stage
    /// (`acknowledgeCase`, once per stage).
    pub acknowledged: bool,
    /// The agencies taking part beyond the two parties now (joined, not
    /// left): their people and `cases:read` clients see the case, and
    /// their people act as the protocol says ([`check`]). Empty where the
    /// caller is a party or the board (for them it changes nothing).
    pub participants: &'a [Joined],
}

/// An agency taking part in a case beyond its two parties (`joinCase`),
/// as permissions see it: what it may do is the rule of the stage it
/// joined at, for its kind ([`crate::domain::protocol::Stage::participant`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The agency.
    pub agency: AgencyId,
    /// Its kind, as when it joined.
    pub kind: AgencyKind,
    /// The stage it joined at.
    pub stage: String,
}

impl CaseFacts<'_> {
    /// Whether `agency` is one of the case's two parties.
    pub fn is_party(&self, agency: AgencyId) -> bool {
        agency == self.raising || agency == self.receiving
    }

    /// The participation of `agency`, if it takes part beyond the parties.
    pub fn participation(&self, agency: AgencyId) -> Option<&Joined> {
        self.participants.iter().find(|j| j.agency == agency)
    }
}

/// Whether `actor` sees the case: its visibility covers the parties, or
/// the caller's agency takes part in it.
pub fn sees(actor: &Actor, case: &CaseFacts<'_>) -> bool {
    use super::actor::CaseVisibility;
    let visibility = actor.case_visibility();
    visibility.allows(case.partnership, case.raising, case.receiving)
        || matches!(visibility, CaseVisibility::Parties { partnership, agency }
            if partnership == case.partnership && case.participation(agency).is_some())
}

/// The participation `actor` acts through on the case: the caller's agency
/// takes part and is not a party (a board chair acts for the board).
fn acting_participation<'c>(case: &'c CaseFacts<'_>, actor: &Actor) -> Option<&'c Joined> {
    let agency = actor.acting_agency()?;
    if case.is_party(agency) { None } else { case.participation(agency) }
}

/// Why an action is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The caller may not see the case; report it as not found.
    #[error("case not found")]
    NotVisible,
    /// A machine client (no role) can only read.
    #[error("a client without a role may only read")]
    NoRole {
        /// The roles that may take the action here.
        allowed_roles: Vec<Role>,
    },
    /// The role may not take the action at this stage.
    #[error("{}", forbidden_message(*.role, *.action, .stage, .allowed_roles))]
    Forbidden {
        /// The caller's role.
        role: Role,
        /// The action.
        action: Action,
        /// The stage.
        stage: String,
        /// The roles that may.
        allowed_roles: Vec<Role>,
    },
    /// A view is one party agency's position; the caller acts for none (a
    /// board chair acts for the board).
    #[error("a view is the raising or the receiving agency's; you act for neither")]
    NotAParty {
        /// The roles that may record a view here.
        allowed_roles: Vec<Role>,
    },
    /// Only one side of the dispute may take the action here.
    #[error("at {stage}, only the {side} agency may {action}")]
    WrongSide {
        /// The action.
        action: Action,
        /// The stage.
        stage: String,
        /// The side that may.
        side: Side,
        /// The roles that may take the action here.
        allowed_roles: Vec<Role>,
    },
    /// The case is closed.
    #[error("the case is closed")]
    Closed,
    /// The case is at the top of its route.
    #[error("the case is at the last stage of its route")]
    LastStage,
    /// The case was already acknowledged at its current stage.
    #[error("the case was already acknowledged at {0}")]
    AlreadyAcknowledged(String),
    /// The action is not about an existing case.
    #[error("{0} is not an action on an existing case")]
    NotACaseAction(Action),
    /// Only the agency that owns an agreed action records it done.
    #[error("only the owner of the action, the {side} agency, may complete it")]
    NotTheOwner {
        /// The owner's side.
        side: Side,
        /// The roles that may agree (and so complete) actions here.
        allowed_roles: Vec<Role>,
    },
    /// The agreed action was already completed.
    #[error("the action was already completed")]
    AlreadyCompleted,
    /// The caller acts for an agency taking part beyond the two parties,
    /// and the protocol does not give the action to its role.
    #[error("{}", participant_message(*.role, *.action, .allowed_roles))]
    NotForParticipant {
        /// The caller's role.
        role: Role,
        /// The action.
        action: Action,
        /// The participant's roles that may take it (empty: none may).
        allowed_roles: Vec<Role>,
    },
}

fn participant_message(role: Role, action: Action, allowed: &[Role]) -> String {
    if allowed.is_empty() {
        format!("a participant beyond the two parties may not {action}; it is the parties'")
    } else {
        format!(
            "a participant's {role} may not {action}; the participant's roles that may: {}",
            names(allowed)
        )
    }
}

/// Who may do what a caller was refused, for the refusal's error: the roles
/// the protocol's policy names for the action here (sorted; empty when no
/// role may), and the sides of the dispute that may (empty when the side
/// does not matter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    /// The roles that may.
    pub roles: Vec<Role>,
    /// The sides that may.
    pub sides: Vec<Side>,
}

impl Allowed {
    /// Only roles matter.
    pub fn roles(roles: Vec<Role>) -> Self {
        Self { roles, sides: Vec::new() }
    }
}

impl Refusal {
    /// Who may, when the refusal is about the caller's role or side (`None`
    /// for a refusal about the case: not visible, closed, last stage).
    pub fn allowed(&self) -> Option<Allowed> {
        match self {
            Refusal::NoRole { allowed_roles }
            | Refusal::Forbidden { allowed_roles, .. }
            | Refusal::NotForParticipant { allowed_roles, .. } => {
                Some(Allowed::roles(allowed_roles.clone()))
            }
            Refusal::NotAParty { allowed_roles } => Some(Allowed {
                roles: allowed_roles.clone(),
                sides: vec![Side::Raising, Side::Receiving],
            }),
            Refusal::WrongSide { side, allowed_roles, .. }
            | Refusal::NotTheOwner { side, allowed_roles } => {
                Some(Allowed { roles: allowed_roles.clone(), sides: vec![*side] })
            }
            Refusal::NotACaseAction(_) => Some(Allowed::default()),
            Refusal::NotVisible
            | Refusal::Closed
            | Refusal::LastStage
            | Refusal::AlreadyAcknowledged(_)
            | Refusal::AlreadyCompleted => None,
        }
    }
}

fn forbidden_message(role: Role, action: Action, stage: &str, allowed: &[Role]) -> String {
    if allowed.is_empty() {
        format!("no role may {action} at {stage}; a {role} may not")
    } else {
        let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
        format!("a {role} may not {action} at {stage}; roles that may: {}", names.join(", "))
    }
}

/// Actions on an existing case, in a stable order (what `viewerCan` shows).
pub const CASE_ACTIONS: [Action; 10] = [
    Action::AddRecord,
    Action::RecordView,
    Action::AgreeAction,
    Action::Escalate,
    Action::Accept,
    Action::Resolve,
    Action::Withdraw,
    Action::SkipStage,
    Action::ReadAuditTrail,
    Action::ReadReport,
];

/// Whether `action` is only ever taken by one of the case's two agencies,
/// for itself: recording a view (a view is a party's position). Whoever acts
/// for no party (a board chair acts for the board) is refused it, whatever
/// the policy lists; the protocol validator reports a list that names such
/// a role ([`crate::domain::policy::NeverApplies::ActsForNoParty`]).
pub const fn needs_a_party(action: Action) -> bool {
    matches!(action, Action::RecordView)
}

/// May `actor` take `action` on the case? `Ok(())` or the first reason not.
pub fn check(
    protocol: &Protocol,
    case: &CaseFacts<'_>,
    actor: &Actor,
    action: Action,
) -> Result<(), Refusal> {
    if !sees(actor, case) {
        return Err(Refusal::NotVisible);
    }
    if !CASE_ACTIONS.contains(&action) {
        return Err(Refusal::NotACaseAction(action));
    }
    if let Some(joined) = acting_participation(case, actor) {
        return check_participant(protocol, case, actor, action, joined);
    }
    let allowed_roles = || allowed_roles(protocol, case.route, case.stage, action);
    let role = actor.role.ok_or_else(|| Refusal::NoRole { allowed_roles: allowed_roles() })?;
    // Sides are agencies'. A board chair acts for the board: on no side,
    // so the chair records no view (whatever a list says: the protocol
    // validator keeps the chair out of those lists), and accepts or
    // withdraws only where the protocol names the chair (its board stages).
    let side = actor.acting_agency();
    let board = actor.acts_for_board();
    if needs_a_party(action) && side != Some(case.raising) && side != Some(case.receiving) {
        return Err(Refusal::NotAParty { allowed_roles: allowed_roles() });
    }
    if let Decision::Denied { allowed_roles } =
        decide(protocol, case.route, case.stage, role, action)
    {
        return Err(Refusal::Forbidden {
            role,
            action,
            stage: case.stage.to_owned(),
            allowed_roles,
        });
    }
    let reads = matches!(action, Action::ReadAuditTrail | Action::ReadReport);
    if !reads && !case.open {
        return Err(Refusal::Closed);
    }
    let needed = policy::side(protocol, case.route, case.stage, action);
    let on_side = match needed {
        None | Some(Side::Either) => true,
        Some(Side::Raising) => side == Some(case.raising),
        Some(Side::Receiving) => side == Some(case.receiving),
    };
    if !board
        && !on_side
        && let Some(needed) = needed
    {
        return Err(Refusal::WrongSide {
            action,
            stage: case.stage.to_owned(),
            side: needed,
            allowed_roles: allowed_roles(),
        });
    }
    match action {
        Action::Escalate if protocol.next_stage(case.route, case.stage).is_none() => {
            return Err(Refusal::LastStage);
        }
        Action::SkipStage => {
            let above_next = protocol
                .next_stage(case.route, case.stage)
                .and_then(|next| protocol.next_stage(case.route, next.key()));
            if above_next.is_none() {
                return Err(Refusal::LastStage);
            }
        }
        Action::Accept if case.acknowledged => {
            return Err(Refusal::AlreadyAcknowledged(case.stage.to_owned()));
        }
        _ => {}
    }
    Ok(())
}

/// [`check`] for a caller acting for an agency that takes part beyond the
/// two parties: the rule of the stage it joined at, for its kind, gives
/// its roles the actions of `may` (adding records, reading), at any stage
/// while it takes part; nothing else (the course of the dispute is the
/// parties'). The role-by-stage policy and the sides are the parties'
/// rules and do not apply.
fn check_participant(
    protocol: &Protocol,
    case: &CaseFacts<'_>,
    actor: &Actor,
    action: Action,
    joined: &Joined,
) -> Result<(), Refusal> {
    let rule = protocol.stage(case.route, &joined.stage).and_then(|s| s.participant(joined.kind));
    let gives = rule.is_some_and(|r| r.may().contains(&action));
    let allowed_roles = match rule {
        Some(r) if gives => sorted(r.roles()),
        _ => Vec::new(),
    };
    let role =
        actor.role.ok_or_else(|| Refusal::NoRole { allowed_roles: allowed_roles.clone() })?;
    if !gives || !allowed_roles.contains(&role) {
        return Err(Refusal::NotForParticipant { role, action, allowed_roles });
    }
    let reads = matches!(action, Action::ReadAuditTrail | Action::ReadReport);
    if !reads && !case.open {
        return Err(Refusal::Closed);
    }
    Ok(())
}

fn sorted(roles: &[Role]) -> Vec<Role> {
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    roles
}

/// The agency `joinCase` would bring in, as the directory has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joining {
    /// The agency.
    pub agency: AgencyId,
    /// Its partnership.
    pub partnership: PartnershipId,
    /// Its kind.
    pub kind: AgencyKind,
}

/// Why bringing an agency into a case, or letting it leave, is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParticipantRefusal {
    /// The caller may not see the case; report it as not found.
    #[error("case not found")]
    NotVisible,
    /// A machine client (no role) changes nothing.
    #[error("a client without a role may only read")]
    NoRole {
        /// The roles that may.
        allowed_roles: Vec<Role>,
    },
    /// The case's stage brings in no agency beyond the parties.
    #[error("{stage} names no participant beyond the two agencies")]
    NoneNamed {
        /// The case's stage.
        stage: String,
    },
    /// The agency is not of the case's partnership.
    #[error("the agency is not of the case's partnership")]
    OtherPartnership,
    /// The agency is one of the two parties already.
    #[error("the agency is a party to the case already")]
    AParty,
    /// The stage names no participant of the agency's kind.
    #[error("{stage} brings in {}, not {kind}", kind_names(.kinds))]
    WrongKind {
        /// The case's stage.
        stage: String,
        /// The agency's kind.
        kind: AgencyKind,
        /// The kinds the stage names.
        kinds: Vec<AgencyKind>,
    },
    /// The caller's role, or the agency it acts for, may not.
    #[error("a {role} of this agency may not {what}; roles that may: {}", names(.allowed_roles))]
    Forbidden {
        /// The caller's role.
        role: Role,
        /// `bring an agency into the case` or `let the agency leave`.
        what: &'static str,
        /// The roles that may.
        allowed_roles: Vec<Role>,
        /// The sides that may (the parties, for bringing in).
        sides: Vec<Side>,
    },
    /// The case is closed.
    #[error("the case is closed")]
    Closed,
    /// The agency takes part already.
    #[error("the agency takes part in the case already")]
    AlreadyJoined,
    /// The agency does not take part (never joined, or left).
    #[error("the agency does not take part in the case")]
    NotJoined,
}

fn kind_names(kinds: &[AgencyKind]) -> String {
    kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

impl ParticipantRefusal {
    /// Who may, for a refusal of the caller's role or agency (`None` for a
    /// refusal about the case or the agency named).
    pub fn allowed(&self) -> Option<Allowed> {
        match self {
            ParticipantRefusal::NoRole { allowed_roles } => {
                Some(Allowed::roles(allowed_roles.clone()))
            }
            ParticipantRefusal::Forbidden { allowed_roles, sides, .. } => {
                Some(Allowed { roles: allowed_roles.clone(), sides: sides.clone() })
            }
            _ => None,
        }
    }
}

/// May `actor` bring the agency `joining` into the case (`joinCase`)? The
/// case's current stage must name a participant of the agency's kind
/// (protocol data: [`crate::domain::protocol::Stage::participants`]); the
/// caller is a person of one of the two parties (or the board chair)
/// whose role the participant's `added_by` lists: the parties seek the
/// participant out (seed 004: "the manager or named / designated lead …
/// should contact the Child Protection Manager"), so an agency never
/// joins itself a case it cannot see. The agency is of the case's
/// partnership, not a party, and not taking part already; the case is
/// open. `Ok` holds the stage's rule for the participant.
pub fn may_join<'p>(
    protocol: &'p Protocol,
    case: &CaseFacts<'_>,
    actor: &Actor,
    joining: &Joining,
) -> Result<&'p super::protocol::Participant, ParticipantRefusal> {
    if !sees(actor, case) {
        return Err(ParticipantRefusal::NotVisible);
    }
    let named = protocol.stage(case.route, case.stage).map(|s| s.participants()).unwrap_or(&[]);
    let rule = named.iter().find(|r| r.agency_kind() == joining.kind);
    let allowed_roles = || sorted(rule.map(|r| r.added_by()).unwrap_or_default());
    let role =
        actor.role.ok_or_else(|| ParticipantRefusal::NoRole { allowed_roles: allowed_roles() })?;
    if named.is_empty() {
        return Err(ParticipantRefusal::NoneNamed { stage: case.stage.to_owned() });
    }
    if joining.partnership != case.partnership {
        return Err(ParticipantRefusal::OtherPartnership);
    }
    if case.is_party(joining.agency) {
        return Err(ParticipantRefusal::AParty);
    }
    let Some(rule) = rule else {
        return Err(ParticipantRefusal::WrongKind {
            stage: case.stage.to_owned(),
            kind: joining.kind,
            kinds: named.iter().map(|r| r.agency_kind()).collect(),
        });
    };
    let for_a_party = actor.acting_agency().is_some_and(|a| case.is_party(a));
    if !rule.added_by().contains(&role) || !(for_a_party || actor.acts_for_board()) {
        return Err(ParticipantRefusal::Forbidden {
            role,
            what: "bring an agency into the case",
            allowed_roles: allowed_roles(),
            sides: vec![Side::Raising, Side::Receiving],
        });
    }
    if !case.open {
        return Err(ParticipantRefusal::Closed);
    }
    if case.participation(joining.agency).is_some() {
        return Err(ParticipantRefusal::AlreadyJoined);
    }
    Ok(rule)
}

/// May `actor` end `leaving`'s part in the case (`leaveCase`)? The
/// participant's own roles (it leaves) or the roles that brought it in,
/// of either party or the board chair (they release it), by the rule of
/// the stage it joined at; open or closed (leaving only narrows who sees
/// the case).
pub fn may_leave(
    protocol: &Protocol,
    case: &CaseFacts<'_>,
    actor: &Actor,
    leaving: AgencyId,
) -> Result<(), ParticipantRefusal> {
    if !sees(actor, case) {
        return Err(ParticipantRefusal::NotVisible);
    }
    let joined = case.participation(leaving);
    let rule = joined
        .and_then(|j| protocol.stage(case.route, &j.stage).and_then(|s| s.participant(j.kind)));
    let allowed_roles =
        || sorted(&rule.map(|r| [r.roles(), r.added_by()].concat()).unwrap_or_default());
    let role =
        actor.role.ok_or_else(|| ParticipantRefusal::NoRole { allowed_roles: allowed_roles() })?;
    let (Some(_), Some(rule)) = (joined, rule) else {
        return Err(ParticipantRefusal::NotJoined);
    };
    let agency = actor.acting_agency();
    let itself = agency == Some(leaving) && rule.roles().contains(&role);
    let releases = rule.added_by().contains(&role)
        && (agency.is_some_and(|a| case.is_party(a)) || actor.acts_for_board());
    if !itself && !releases {
        return Err(ParticipantRefusal::Forbidden {
            role,
            what: "let the agency leave the case",
            allowed_roles: allowed_roles(),
            sides: Vec::new(),
        });
    }
    Ok(())
}

/// May `actor` record an agreed action of the case done? Whoever may agree
/// actions on the case now ([`check`] of `agree_action`: visible, the
/// role at the stage, the case open), for the agency that owns the action
/// (`owner`, a party), once (`completed`: it already was).
pub fn may_complete_action(
    protocol: &Protocol,
    case: &CaseFacts<'_>,
    actor: &Actor,
    owner: AgencyId,
    completed: bool,
) -> Result<(), Refusal> {
    check(protocol, case, actor, Action::AgreeAction)?;
    if actor.acting_agency() != Some(owner) {
        let side = if owner == case.raising { Side::Raising } else { Side::Receiving };
        return Err(Refusal::NotTheOwner {
            side,
            allowed_roles: allowed_roles(protocol, case.route, case.stage, Action::AgreeAction),
        });
    }
    if completed {
        return Err(Refusal::AlreadyCompleted);
    }
    Ok(())
}

/// Who may read a partnership's board statistics, besides clients with
/// the `statistics:read` scope: the roles its protocol names (a
/// partnership-wide decision: route and stage do not matter). On refusal,
/// the roles that may, sorted, for the caller's message.
pub fn may_read_statistics(protocol: &Protocol, actor: &Actor) -> Result<(), Vec<Role>> {
    let by_role = actor.role.map(|role| decide(protocol, "*", "*", role, Action::ReadStatistics));
    if matches!(by_role, Some(Decision::Allowed))
        || actor.has_scope(super::role::Scope::StatisticsRead)
    {
        return Ok(());
    }
    let mut roles = protocol.read_statistics().to_vec();
    roles.sort_unstable_by_key(|r| r.as_str());
    roles.dedup();
    Err(roles)
}

/// The roles that read the board queue: the one that acts for the board.
pub const BOARD_QUEUE_ROLES: [Role; 1] = [Role::BoardChair];

/// Whether the caller may read the board queue: only one who acts for the
/// board (a board chair).
pub fn may_read_board_queue(actor: &Actor) -> bool {
    actor.role.is_some_and(|role| BOARD_QUEUE_ROLES.contains(&role)) && actor.acts_for_board()
}

/// Why an agency's feedback on a case is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FeedbackRefusal {
    /// The caller may not see the case, or is not one of its two
    /// agencies; report it as not found.
    #[error("case not found")]
    NotVisible,
    /// A machine client (no role) gives no feedback.
    #[error("feedback is given by a person of one of the two agencies; this token has no role")]
    NoRole,
    /// The token acts for no agency (a board chair acts for the board).
    #[error("feedback is given by one of the case's two agencies; the token acts for none")]
    NoAgency,
    /// The case is still open.
    #[error("feedback is given once the case is resolved or withdrawn; this case is open")]
    Open,
}

impl FeedbackRefusal {
    /// Who may give feedback, for a refusal of the caller's token: the
    /// roles that act for an agency, on either side. `None` for a refusal
    /// that is not about who the caller is.
    pub fn allowed(&self) -> Option<Allowed> {
        match self {
            FeedbackRefusal::NoRole | FeedbackRefusal::NoAgency => Some(Allowed {
                roles: Role::ALL.into_iter().filter(|r| !r.acts_for_board()).collect(),
                sides: vec![Side::Raising, Side::Receiving],
            }),
            FeedbackRefusal::NotVisible | FeedbackRefusal::Open => None,
        }
    }
}

/// May `actor` give its agency's feedback on the case? Only a person
/// (a role) of one of its two agencies, once the case is closed; `Ok` names
/// the agency the feedback is from. (That an agency gives it once is the
/// stored rows' to say.)
pub fn may_give_feedback(case: &CaseFacts<'_>, actor: &Actor) -> Result<AgencyId, FeedbackRefusal> {
    if !sees(actor, case) {
        return Err(FeedbackRefusal::NotVisible);
    }
    if actor.role.is_none() {
        return Err(FeedbackRefusal::NoRole);
    }
    let agency = actor.acting_agency().ok_or(FeedbackRefusal::NoAgency)?;
    if agency != case.raising && agency != case.receiving {
        // Only the two parties give feedback; to anyone else the case is
        // as good as absent.
        return Err(FeedbackRefusal::NotVisible);
    }
    if case.open {
        return Err(FeedbackRefusal::Open);
    }
    Ok(agency)
}

/// Why recording that the family was told is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FamilyToldRefusal {
    /// The caller may not see the case; report it as not found.
    #[error("case not found")]
    NotVisible,
    /// The case's route has no family-told rule.
    #[error("the {route} route has no rule that the family is told; nothing to record")]
    NoRule {
        /// The case's route.
        route: String,
    },
    /// A machine client (no role) records nothing.
    #[error("a client without a role may only read")]
    NoRole {
        /// The roles that record it.
        allowed_roles: Vec<Role>,
    },
    /// The role does not record it.
    #[error("a {role} does not record that the family was told; roles that do: {}", names(.allowed_roles))]
    Forbidden {
        /// The caller's role.
        role: Role,
        /// The roles that record it.
        allowed_roles: Vec<Role>,
    },
    /// Only one side of the case records it.
    #[error("only the {side} agency records that the family was told")]
    WrongSide {
        /// The side that records it.
        side: Side,
        /// The roles that record it.
        allowed_roles: Vec<Role>,
    },
    /// The case is closed.
    #[error("the case is closed")]
    Closed,
}

fn names(roles: &[Role]) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
}

impl FamilyToldRefusal {
    /// Who may, for a refusal of the caller's role or side (`None` for a
    /// refusal about the case).
    pub fn allowed(&self) -> Option<Allowed> {
        match self {
            FamilyToldRefusal::NoRole { allowed_roles }
            | FamilyToldRefusal::Forbidden { allowed_roles, .. } => {
                Some(Allowed::roles(allowed_roles.clone()))
            }
            FamilyToldRefusal::WrongSide { side, allowed_roles } => {
                Some(Allowed { roles: allowed_roles.clone(), sides: vec![*side] })
            }
            FamilyToldRefusal::NotVisible
            | FamilyToldRefusal::NoRule { .. }
            | FamilyToldRefusal::Closed => None,
        }
    }
}

/// May `actor` record, on the case, that the family was told of it
/// (Rotherham: "the Conference Chair will ensure that families are aware
/// of any challenge escalations raised")? Only where the protocol's
/// `family_told` rule covers the case's route, by the rule's `recorded_by`
/// roles on its `side` (a board chair, on no side, is not held back by the
/// side, as in [`check`]), while the case is open. At any stage of the
/// route: the family is told of each challenge escalation.
pub fn may_record_family_told(
    protocol: &Protocol,
    case: &CaseFacts<'_>,
    actor: &Actor,
) -> Result<(), FamilyToldRefusal> {
    if !sees(actor, case) {
        return Err(FamilyToldRefusal::NotVisible);
    }
    let Some(rule) = protocol.rules().family_told().filter(|r| r.route() == case.route) else {
        return Err(FamilyToldRefusal::NoRule { route: case.route.to_owned() });
    };
    let allowed_roles = || {
        let mut roles = rule.recorded_by().to_vec();
        roles.sort();
        roles.dedup();
        roles
    };
    let role =
        actor.role.ok_or_else(|| FamilyToldRefusal::NoRole { allowed_roles: allowed_roles() })?;
    if !rule.recorded_by().contains(&role) {
        return Err(FamilyToldRefusal::Forbidden { role, allowed_roles: allowed_roles() });
    }
    if !case.open {
        return Err(FamilyToldRefusal::Closed);
    }
    let agency = actor.acting_agency();
    let on_side = match rule.side() {
        Side::Either => true,
        Side::Raising => agency == Some(case.raising),
        Side::Receiving => agency == Some(case.receiving),
    };
    if !on_side && !actor.acts_for_board() {
        return Err(FamilyToldRefusal::WrongSide {
            side: rule.side(),
            allowed_roles: allowed_roles(),
        });
    }
    Ok(())
}

/// Why recording a step-down to child-in-need planning, or its check, is
/// refused for the caller or the case (the state of the step-down itself is
/// [`crate::domain::step_down`]'s).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepDownRefusal {
    /// The caller may not see the case; report it as not found.
    #[error("case not found")]
    NotVisible,
    /// The case's route has no step-down rule.
    #[error("the {route} route has no step-down check; nothing to record")]
    NoRule {
        /// The case's route.
        route: String,
    },
    /// A machine client (no role) records nothing.
    #[error("a client without a role may only read")]
    NoRole {
        /// The roles that record it.
        allowed_roles: Vec<Role>,
    },
    /// The role does not record it.
    #[error("a {role} does not record a step-down or its check; roles that do: {}", names(.allowed_roles))]
    Forbidden {
        /// The caller's role.
        role: Role,
        /// The roles that record it.
        allowed_roles: Vec<Role>,
    },
    /// Only one side of the case records it.
    #[error("only the {side} agency records a step-down and its check")]
    WrongSide {
        /// The side that records it.
        side: Side,
        /// The roles that record it.
        allowed_roles: Vec<Role>,
    },
}

impl StepDownRefusal {
    /// Who may, for a refusal of the caller's role or side (`None` for a
    /// refusal about the case).
    pub fn allowed(&self) -> Option<Allowed> {
        match self {
            StepDownRefusal::NoRole { allowed_roles }
            | StepDownRefusal::Forbidden { allowed_roles, .. } => {
                Some(Allowed::roles(allowed_roles.clone()))
            }
            StepDownRefusal::WrongSide { side, allowed_roles } => {
                Some(Allowed { roles: allowed_roles.clone(), sides: vec![*side] })
            }
            StepDownRefusal::NotVisible | StepDownRefusal::NoRule { .. } => None,
        }
    }
}

/// May `actor` record, on the case, a conference's step-down to
/// child-in-need planning and, later, the check of it (Rotherham: "the
/// Conference Chair will, six weeks post conference, monitor the child's
/// case file")? Only where the protocol's `step_down_check` rule covers the
/// case's route, by the rule's `recorded_by` roles on its `side` (a board
/// chair, on no side, is not held back by the side, as in [`check`]). At
/// any stage of the route, and **open or closed**: a conference often
/// decides the step-down after the challenge was resolved, and the check
/// follows six weeks later still. `Ok` holds the rule.
pub fn may_record_step_down<'p>(
    protocol: &'p Protocol,
    case: &CaseFacts<'_>,
    actor: &Actor,
) -> Result<&'p super::protocol::StepDownCheck, StepDownRefusal> {
    if !sees(actor, case) {
        return Err(StepDownRefusal::NotVisible);
    }
    let Some(rule) = protocol.rules().step_down_check().filter(|r| r.route() == case.route) else {
        return Err(StepDownRefusal::NoRule { route: case.route.to_owned() });
    };
    let allowed_roles = || {
        let mut roles = rule.recorded_by().to_vec();
        roles.sort();
        roles.dedup();
        roles
    };
    let role =
        actor.role.ok_or_else(|| StepDownRefusal::NoRole { allowed_roles: allowed_roles() })?;
    if !rule.recorded_by().contains(&role) {
        return Err(StepDownRefusal::Forbidden { role, allowed_roles: allowed_roles() });
    }
    let agency = actor.acting_agency();
    let on_side = match rule.side() {
        Side::Either => true,
        Side::Raising => agency == Some(case.raising),
        Side::Receiving => agency == Some(case.receiving),
    };
    if !on_side && !actor.acts_for_board() {
        return Err(StepDownRefusal::WrongSide {
            side: rule.side(),
            allowed_roles: allowed_roles(),
        });
    }
    Ok(rule)
}

/// What an anonymous caller (no token) may read at the root of a query,
/// when the settings open it: see [`anonymous_root_field`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnonymousRead {
    /// Always (`__typename`: it discloses nothing).
    Always,
    /// When introspection is open to anonymous callers.
    Introspection,
    /// When the directory (partnerships and agencies) is open.
    Directory,
    /// Never: every other root field needs a token.
    Never,
}

/// Under which opening an anonymous caller may ask for the root field
/// `name`. A document is open to an anonymous caller only if every root
/// field it selects is.
pub fn anonymous_root_field(name: &str) -> AnonymousRead {
    match name {
        "__typename" => AnonymousRead::Always,
        "__schema" | "__type" => AnonymousRead::Introspection,
        "partnerships" | "agencies" => AnonymousRead::Directory,
        _ => AnonymousRead::Never,
    }
}

/// The most views one case keeps. A case's views and agreed actions are
/// read whole, with the case (they are not paged), so what one case holds
/// is bounded, and so is the cost of reading it (`graphql::cost`). A
/// protocol's stages and parties need far fewer.
pub const MOST_VIEWS_PER_CASE: usize = 50;

/// The most agreed actions one case keeps (see [`MOST_VIEWS_PER_CASE`]).
pub const MOST_ACTIONS_PER_CASE: usize = 50;

/// Whether a case that holds `held` of something may take one more, when
/// it keeps at most `most`.
pub fn has_room(held: u64, most: usize) -> bool {
    usize::try_from(held).is_ok_and(|held| held < most)
}

/// Whether `owner` may own an action agreed on the case: only one of its two
/// parties, the raising or the receiving agency (the agency that owns an
/// action must see the case to carry it out).
pub fn owner_is_party(case: &CaseFacts<'_>, owner: AgencyId) -> bool {
    owner == case.raising || owner == case.receiving
}

/// Every case action with whether `actor` may take it now.
pub fn case_permissions(
    protocol: &Protocol,
    case: &CaseFacts<'_>,
    actor: &Actor,
) -> Vec<(Action, bool)> {
    CASE_ACTIONS.iter().map(|&a| (a, check(protocol, case, actor, a).is_ok())).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::protocol::builtin;
    use crate::domain::role::Scope;

    struct World {
        protocols: Vec<Protocol>,
        partnership: PartnershipId,
        raising: AgencyId,
        receiving: AgencyId,
        bystander: AgencyId,
    }

    fn world() -> World {
        World {
            protocols: builtin().unwrap(),
            partnership: PartnershipId::new(),
            raising: AgencyId::new(),
            receiving: AgencyId::new(),
            bystander: AgencyId::new(),
        }
    }

    fn actor(w: &World, role: Option<Role>, agency: Option<AgencyId>) -> Actor {
        Actor {
            issuer: "i".into(),
            sub: "s".into(),
            role,
            scopes: BTreeSet::from([Scope::CasesRead]),
            partnership: w.partnership,
            agency,
        }
    }

    /// The variant's name of a refusal, for tables.
    fn variant<E: std::fmt::Debug>(e: &E) -> String {
        let name = format!("{e:?}");
        name.split([' ', '(', '{']).next().unwrap_or_default().to_owned()
    }

    struct Joins {
        w: World,
        csc: AgencyId,
        joined: Vec<Joined>,
    }

    fn joins() -> Joins {
        let w = world();
        let csc = AgencyId::new();
        let joined = vec![Joined {
            agency: csc,
            kind: AgencyKind::ChildrensSocialCare,
            stage: "stage-4".into(),
        }];
        Joins { w, csc, joined }
    }

    impl Joins {
        fn six(&self) -> &Protocol {
            self.w.protocols.iter().find(|p| p.id() == "six-stage").unwrap()
        }

        fn case<'a>(&'a self, stage: &'a str, open: bool, joined: bool) -> CaseFacts<'a> {
            CaseFacts {
                partnership: self.w.partnership,
                raising: self.w.raising,
                receiving: self.w.receiving,
                route: "main",
                stage,
                open,
                acknowledged: false,
                participants: if joined { &self.joined } else { &[] },
            }
        }
    }

    #[test]
    fn a_participant_sees_the_case_and_acts_as_the_stage_it_joined_at_says() {
        let j = joins();
        let lead = actor(&j.w, Some(Role::SafeguardingLead), Some(j.csc));
        let practitioner = actor(&j.w, Some(Role::Practitioner), Some(j.csc));
        let client = actor(&j.w, None, Some(j.csc));
        let bystander = actor(&j.w, Some(Role::SafeguardingLead), Some(j.w.bystander));
        let manager = actor(&j.w, Some(Role::Manager), Some(j.w.raising));
        type Want = Result<(), &'static str>;
        #[track_caller]
        fn row(
            j: &Joins,
            name: &str,
            case: CaseFacts<'_>,
            who: &Actor,
            action: Action,
            want: Want,
        ) {
            let got = check(j.six(), &case, who, action).map_err(|r| variant(&r));
            assert_eq!(got, want.map_err(str::to_owned), "{name}");
        }
        let not_yet = j.case("stage-4", true, false);
        let at4 = j.case("stage-4", true, true);
        let at5 = j.case("stage-5", true, true);
        let closed = j.case("stage-4", false, true);
        row(&j, "before joining, not found", not_yet, &lead, Action::AddRecord, Err("NotVisible"));
        row(&j, "joined, adds a record", at4, &lead, Action::AddRecord, Ok(()));
        row(&j, "and reads the trail", at4, &lead, Action::ReadAuditTrail, Ok(()));
        row(&j, "still, a stage later", at5, &lead, Action::AddRecord, Ok(()));
        row(&j, "escalates not", at4, &lead, Action::Escalate, Err("NotForParticipant"));
        row(&j, "records no view", at4, &lead, Action::RecordView, Err("NotForParticipant"));
        row(&j, "resolves not", at4, &lead, Action::Resolve, Err("NotForParticipant"));
        row(&j, "agrees no action", at4, &lead, Action::AgreeAction, Err("NotForParticipant"));
        row(&j, "reads no report", at4, &lead, Action::ReadReport, Err("NotForParticipant"));
        row(
            &j,
            "another role of it",
            at4,
            &practitioner,
            Action::AddRecord,
            Err("NotForParticipant"),
        );
        row(&j, "its client reads, acts not", at4, &client, Action::AddRecord, Err("NoRole"));
        row(&j, "closed: no record", closed, &lead, Action::AddRecord, Err("Closed"));
        row(&j, "closed: the trail", closed, &lead, Action::ReadAuditTrail, Ok(()));
        row(&j, "another agency still not", at4, &bystander, Action::AddRecord, Err("NotVisible"));
        row(&j, "a party as before", at4, &manager, Action::AddRecord, Ok(()));
        row(&j, "and escalates", at4, &manager, Action::Escalate, Ok(()));
        assert!(sees(&client, &at4), "a cases:read client of the participant sees the case");
        let refusal = check(j.six(), &at4, &practitioner, Action::AddRecord).unwrap_err();
        assert_eq!(refusal.allowed().unwrap().roles, vec![Role::SafeguardingLead]);
        let mut elsewhere = lead.clone();
        elsewhere.partnership = PartnershipId::new();
        assert!(!sees(&elsewhere, &at4), "another partnership's token naming the agency");
    }

    #[test]
    fn a_party_brings_in_the_kind_of_agency_the_stage_names() {
        let j = joins();
        let csc = Joining {
            agency: j.csc,
            partnership: j.w.partnership,
            kind: AgencyKind::ChildrensSocialCare,
        };
        let school = Joining { kind: AgencyKind::Education, agency: j.w.bystander, ..csc };
        let the_raiser = Joining { agency: j.w.raising, ..csc };
        let far = Joining { partnership: PartnershipId::new(), ..csc };
        let manager = actor(&j.w, Some(Role::Manager), Some(j.w.raising));
        let lead = actor(&j.w, Some(Role::SafeguardingLead), Some(j.w.receiving));
        let practitioner = actor(&j.w, Some(Role::Practitioner), Some(j.w.raising));
        let chair = actor(&j.w, Some(Role::BoardChair), None);
        let client = actor(&j.w, None, Some(j.w.raising));
        let bystander = actor(&j.w, Some(Role::Manager), Some(j.w.bystander));
        let csc_lead = actor(&j.w, Some(Role::SafeguardingLead), Some(j.csc));
        type Want = Result<(), &'static str>;
        #[track_caller]
        fn row(
            j: &Joins,
            name: &str,
            case: CaseFacts<'_>,
            who: &Actor,
            joining: &Joining,
            want: Want,
        ) {
            let got = may_join(j.six(), &case, who, joining).map(|_| ()).map_err(|r| variant(&r));
            assert_eq!(got, want.map_err(str::to_owned), "{name}");
        }
        let at4 = j.case("stage-4", true, false);
        row(&j, "the raising manager", at4, &manager, &csc, Ok(()));
        row(&j, "the receiving lead", at4, &lead, &csc, Ok(()));
        row(&j, "a practitioner", at4, &practitioner, &csc, Err("Forbidden"));
        row(&j, "the board chair (not named)", at4, &chair, &csc, Err("Forbidden"));
        row(&j, "a client", at4, &client, &csc, Err("NoRole"));
        row(&j, "another agency", at4, &bystander, &csc, Err("NotVisible"));
        row(&j, "the csc itself, unseen", at4, &csc_lead, &csc, Err("NotVisible"));
        row(
            &j,
            "stage 3 names none",
            j.case("stage-3", true, false),
            &manager,
            &csc,
            Err("NoneNamed"),
        );
        row(&j, "a school", at4, &manager, &school, Err("WrongKind"));
        row(&j, "a party", at4, &manager, &the_raiser, Err("AParty"));
        row(&j, "another partnership's", at4, &manager, &far, Err("OtherPartnership"));
        row(&j, "closed", j.case("stage-4", false, false), &manager, &csc, Err("Closed"));
        row(&j, "twice", j.case("stage-4", true, true), &manager, &csc, Err("AlreadyJoined"));
        let other_csc = Joining { agency: AgencyId::new(), ..csc };
        let joined = j.case("stage-4", true, true);
        row(
            &j,
            "a participant brings in no other",
            joined,
            &csc_lead,
            &other_csc,
            Err("Forbidden"),
        );
        let refusal = may_join(j.six(), &at4, &practitioner, &csc).unwrap_err();
        let allowed = refusal.allowed().unwrap();
        assert_eq!(allowed.roles, vec![Role::Manager, Role::SafeguardingLead]);
        assert_eq!(allowed.sides, vec![Side::Raising, Side::Receiving]);
        assert_eq!(
            may_join(j.six(), &at4, &manager, &school).unwrap_err().to_string(),
            "stage-4 brings in childrens_social_care, not education"
        );
        for p in &j.w.protocols {
            if p.id() != "six-stage" {
                let stages = p.routes().iter().flat_map(|r| r.stages());
                assert!(stages.clone().all(|s| s.participants().is_empty()), "{}", p.id());
            }
        }
    }

    #[test]
    fn a_participant_leaves_or_is_released() {
        let j = joins();
        let csc_lead = actor(&j.w, Some(Role::SafeguardingLead), Some(j.csc));
        let csc_practitioner = actor(&j.w, Some(Role::Practitioner), Some(j.csc));
        let manager = actor(&j.w, Some(Role::Manager), Some(j.w.receiving));
        let practitioner = actor(&j.w, Some(Role::Practitioner), Some(j.w.raising));
        let bystander = actor(&j.w, Some(Role::Manager), Some(j.w.bystander));
        let client = actor(&j.w, None, Some(j.csc));
        type Want = Result<(), &'static str>;
        #[track_caller]
        fn row(
            j: &Joins,
            name: &str,
            case: CaseFacts<'_>,
            who: &Actor,
            leaving: AgencyId,
            want: Want,
        ) {
            let got = may_leave(j.six(), &case, who, leaving).map_err(|r| variant(&r));
            assert_eq!(got, want.map_err(str::to_owned), "{name}");
        }
        let at5 = j.case("stage-5", true, true);
        row(&j, "it leaves", at5, &csc_lead, j.csc, Ok(()));
        row(&j, "a party releases it", at5, &manager, j.csc, Ok(()));
        row(&j, "closed too", j.case("stage-5", false, true), &csc_lead, j.csc, Ok(()));
        row(&j, "its practitioner", at5, &csc_practitioner, j.csc, Err("Forbidden"));
        row(&j, "a party's practitioner", at5, &practitioner, j.csc, Err("Forbidden"));
        row(&j, "its client", at5, &client, j.csc, Err("NoRole"));
        row(&j, "another agency", at5, &bystander, j.csc, Err("NotVisible"));
        row(&j, "an agency not taking part", at5, &manager, j.w.bystander, Err("NotJoined"));
        row(
            &j,
            "once left, unseen",
            j.case("stage-5", true, false),
            &csc_lead,
            j.csc,
            Err("NotVisible"),
        );
    }

    #[test]
    fn an_agreed_action_is_completed_once_by_its_owner() {
        let w = world();
        let wb = w.protocols.iter().find(|p| p.id() == "western-bay").unwrap();
        let case = |open| CaseFacts {
            partnership: w.partnership,
            raising: w.raising,
            receiving: w.receiving,
            route: "main",
            stage: "stage-1",
            open,
            acknowledged: false,
            participants: &[],
        };
        let theirs = actor(&w, Some(Role::Manager), Some(w.receiving));
        let ours = actor(&w, Some(Role::Manager), Some(w.raising));
        let chair = actor(&w, Some(Role::BoardChair), None);
        let stranger = actor(&w, Some(Role::Manager), Some(w.bystander));
        let client = actor(&w, None, Some(w.receiving));
        let head = actor(&w, Some(Role::HeadOfService), Some(w.receiving));
        type Want = Result<(), &'static str>;
        for (name, facts, who, completed, want) in [
            ("the owner's manager", case(true), &theirs, false, Ok(()) as Want),
            ("again", case(true), &theirs, true, Err("AlreadyCompleted")),
            ("the other party", case(true), &ours, false, Err("NotTheOwner")),
            // At stage 1 the chair may not agree actions at all.
            ("the board chair", case(true), &chair, false, Err("Forbidden")),
            ("a bystander", case(true), &stranger, false, Err("NotVisible")),
            ("a machine client", case(true), &client, false, Err("NoRole")),
            ("a role that may not agree actions", case(true), &head, false, Err("Forbidden")),
            ("a closed case", case(false), &theirs, false, Err("Closed")),
        ] {
            let got = may_complete_action(wb, &facts, who, w.receiving, completed).map_err(|r| {
                let name = format!("{r:?}");
                name.split([' ', '(', '{']).next().unwrap_or_default().to_owned()
            });
            assert_eq!(got, want.map_err(str::to_owned), "{name}");
        }
        let refusal = may_complete_action(wb, &case(true), &ours, w.receiving, false).unwrap_err();
        assert_eq!(refusal.allowed().unwrap().sides, vec![Side::Receiving]);
        assert_eq!(
            refusal.to_string(),
            "only the owner of the action, the receiving agency, may complete it"
        );
    }

    #[test]
    fn a_case_is_acknowledged_once_per_stage_by_the_receiving_side() {
        let w = world();
        let wb = w.protocols.iter().find(|p| p.id() == "western-bay").unwrap();
        let case = |acknowledged| CaseFacts {
            partnership: w.partnership,
            raising: w.raising,
            receiving: w.receiving,
            route: "main",
            stage: "stage-1",
            open: true,
            acknowledged,
            participants: &[],
        };
        let theirs = actor(&w, Some(Role::Manager), Some(w.receiving));
        let ours = actor(&w, Some(Role::Manager), Some(w.raising));
        let got = |facts: &CaseFacts<'_>, who: &Actor| {
            check(wb, facts, who, Action::Accept).map_err(|r| r.to_string())
        };
        assert_eq!(got(&case(false), &theirs), Ok(()));
        assert_eq!(
            got(&case(true), &theirs),
            Err("the case was already acknowledged at stage-1".to_owned())
        );
        // The side is refused first, acknowledged or not.
        assert!(got(&case(true), &ours).unwrap_err().contains("only the receiving agency"));
        // Nothing else is held back by an acknowledgement.
        assert_eq!(check(wb, &case(true), &theirs, Action::AddRecord), Ok(()));
    }

    // One row of the table; the arguments are its columns.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    fn check_row(
        name: &str,
        w: &World,
        protocol: &str,
        stage: &str,
        open: bool,
        who: &Actor,
        action: Action,
        expected: Result<(), &str>,
    ) {
        let protocol = w.protocols.iter().find(|p| p.id() == protocol).unwrap();
        let route = protocol.routes()[0].id().to_owned();
        let case = CaseFacts {
            partnership: w.partnership,
            raising: w.raising,
            receiving: w.receiving,
            route: &route,
            stage,
            open,
            acknowledged: false,
            participants: &[],
        };
        let got = check(protocol, &case, who, action).map_err(|r| r.to_string());
        assert_eq!(got.as_ref().map(|_| ()).map_err(String::as_str), expected, "{name}");
    }

    // Who may, as a refusal tells it: the roles from the policy data and
    // the sides from the side rules.
    #[track_caller]
    fn allowed_row(
        name: &str,
        w: &World,
        stage: &str,
        who: &Actor,
        action: Action,
        expected: Option<(&[Role], &[Side])>,
    ) {
        let protocol = w.protocols.iter().find(|p| p.id() == "western-bay").unwrap();
        let route = protocol.routes()[0].id().to_owned();
        let case = CaseFacts {
            partnership: w.partnership,
            raising: w.raising,
            receiving: w.receiving,
            route: &route,
            stage,
            open: true,
            acknowledged: false,
            participants: &[],
        };
        let got = check(protocol, &case, who, action).err().and_then(|r| r.allowed());
        let expected =
            expected.map(|(roles, sides)| Allowed { roles: roles.to_vec(), sides: sides.to_vec() });
        assert_eq!(got, expected, "{name}");
        if let Some(allowed) = &got {
            assert_eq!(
                allowed.roles,
                crate::domain::policy::allowed_roles(protocol, &route, stage, action),
                "{name}: the roles are the policy's"
            );
        }
    }

    #[test]
    fn refusals_say_which_roles_and_sides_may() {
        use Role::*;
        let w = world();
        let raising_manager = actor(&w, Some(Manager), Some(w.raising));
        let receiving_manager = actor(&w, Some(Manager), Some(w.receiving));
        let client = actor(&w, None, Some(w.raising));
        let chair = actor(&w, Some(BoardChair), None);
        let stage_1_movers: &[Role] = &[Manager, SafeguardingLead, HeadOfService];
        allowed_row(
            "allowed: nothing to say",
            &w,
            "stage-1",
            &raising_manager,
            Action::Escalate,
            None,
        );
        allowed_row(
            "a role the policy does not name",
            &w,
            "stage-1",
            &chair,
            Action::Escalate,
            Some((stage_1_movers, &[])),
        );
        allowed_row(
            "a client without a role",
            &w,
            "stage-1",
            &client,
            Action::Escalate,
            Some((stage_1_movers, &[])),
        );
        let withdrawers = crate::domain::policy::allowed_roles(
            w.protocols.iter().find(|p| p.id() == "western-bay").unwrap(),
            w.protocols.iter().find(|p| p.id() == "western-bay").unwrap().routes()[0].id(),
            "stage-1",
            Action::Withdraw,
        );
        assert!(withdrawers.contains(&Manager), "{withdrawers:?}");
        allowed_row(
            "the wrong side withdraws",
            &w,
            "stage-1",
            &receiving_manager,
            Action::Withdraw,
            Some((&withdrawers, &[Side::Raising])),
        );
        let viewers = crate::domain::policy::allowed_roles(
            w.protocols.iter().find(|p| p.id() == "western-bay").unwrap(),
            w.protocols.iter().find(|p| p.id() == "western-bay").unwrap().routes()[0].id(),
            "stage-4",
            Action::RecordView,
        );
        allowed_row(
            "a chair records no view",
            &w,
            "stage-4",
            &chair,
            Action::RecordView,
            Some((&viewers, &[Side::Raising, Side::Receiving])),
        );
        allowed_row(
            "a bystander is told nothing",
            &w,
            "stage-1",
            &actor(&w, Some(Manager), Some(w.bystander)),
            Action::Escalate,
            None,
        );
    }

    #[test]
    fn refusals_come_in_order_and_name_the_roles_that_may() {
        let w = world();
        let raising_manager = actor(&w, Some(Role::Manager), Some(w.raising));
        let receiving_manager = actor(&w, Some(Role::Manager), Some(w.receiving));
        let bystander = actor(&w, Some(Role::Manager), Some(w.bystander));
        let client = actor(&w, None, Some(w.raising));
        let chair = actor(&w, Some(Role::BoardChair), None);
        let lead = actor(&w, Some(Role::SafeguardingLead), Some(w.raising));
        check_row(
            "party manager escalates at WB stage 1",
            &w,
            "western-bay",
            "stage-1",
            true,
            &raising_manager,
            Action::Escalate,
            Ok(()),
        );
        check_row(
            "a bystander agency cannot see the case",
            &w,
            "western-bay",
            "stage-1",
            true,
            &bystander,
            Action::Escalate,
            Err("case not found"),
        );
        check_row(
            "a machine client only reads",
            &w,
            "western-bay",
            "stage-1",
            true,
            &client,
            Action::AddRecord,
            Err("a client without a role may only read"),
        );
        check_row(
            "closed cases do not move",
            &w,
            "western-bay",
            "stage-1",
            false,
            &raising_manager,
            Action::Escalate,
            Err("the case is closed"),
        );
        check_row(
            "only the raising side withdraws",
            &w,
            "western-bay",
            "stage-1",
            true,
            &receiving_manager,
            Action::Withdraw,
            Err("at stage-1, only the raising agency may withdraw"),
        );
        check_row(
            "at Western Bay, only the raising side escalates",
            &w,
            "western-bay",
            "stage-1",
            true,
            &receiving_manager,
            Action::Escalate,
            Err("at stage-1, only the raising agency may escalate"),
        );
        check_row(
            "the raising side's manager escalates",
            &w,
            "western-bay",
            "stage-1",
            true,
            &raising_manager,
            Action::Escalate,
            Ok(()),
        );
        check_row(
            "elsewhere either side escalates",
            &w,
            "pan-sussex",
            "stage-1",
            true,
            &actor(&w, Some(Role::Practitioner), Some(w.receiving)),
            Action::Escalate,
            Ok(()),
        );
        check_row(
            "only the receiving side accepts",
            &w,
            "western-bay",
            "stage-1",
            true,
            &raising_manager,
            Action::Accept,
            Err("at stage-1, only the receiving agency may accept"),
        );
        check_row(
            "the board chair does not act at WB stage 1",
            &w,
            "western-bay",
            "stage-1",
            true,
            &chair,
            Action::Escalate,
            Err(
                "a board_chair may not escalate at stage-1; roles that may: manager, safeguarding_lead, head_of_service",
            ),
        );
        check_row(
            "nothing is above the last stage",
            &w,
            "western-bay",
            "stage-4",
            true,
            &chair,
            Action::Escalate,
            Err("no role may escalate at stage-4; a board_chair may not"),
        );
        check_row(
            "reading the report of a closed case is fine",
            &w,
            "western-bay",
            "stage-3",
            false,
            &lead,
            Action::ReadReport,
            Ok(()),
        );
        let chair_of_police = actor(&w, Some(Role::BoardChair), Some(w.raising));
        let chair_of_other = actor(&w, Some(Role::BoardChair), Some(w.bystander));
        check_row(
            "a party records its view",
            &w,
            "western-bay",
            "stage-4",
            true,
            &receiving_manager,
            Action::RecordView,
            Ok(()),
        );
        check_row(
            "a chair records no agency's view (and no valid list names the chair)",
            &w,
            "western-bay",
            "stage-4",
            true,
            &chair,
            Action::RecordView,
            Err("a view is the raising or the receiving agency's; you act for neither"),
        );
        check_row(
            "nor when the token names another agency",
            &w,
            "western-bay",
            "stage-4",
            true,
            &chair_of_other,
            Action::RecordView,
            Err("a view is the raising or the receiving agency's; you act for neither"),
        );
        check_row(
            "nor when it names a party: the chair acts for the board",
            &w,
            "western-bay",
            "stage-4",
            true,
            &chair_of_police,
            Action::RecordView,
            Err("a view is the raising or the receiving agency's; you act for neither"),
        );
        check_row(
            "a chair adds records at the board stage",
            &w,
            "western-bay",
            "stage-4",
            true,
            &chair_of_other,
            Action::AddRecord,
            Ok(()),
        );
        check_row(
            "a chair withdraws where the protocol names the chair, on no side",
            &w,
            "western-bay",
            "stage-4",
            true,
            &chair,
            Action::Withdraw,
            Ok(()),
        );
        check_row(
            "and accepts there",
            &w,
            "western-bay",
            "stage-4",
            true,
            &chair_of_other,
            Action::Accept,
            Ok(()),
        );
        check_row(
            "raise is not a case action",
            &w,
            "western-bay",
            "stage-1",
            true,
            &raising_manager,
            Action::Raise,
            Err("raise is not an action on an existing case"),
        );
    }

    #[track_caller]
    fn check_owner(name: &str, w: &World, owner: AgencyId, expected: bool) {
        let case = CaseFacts {
            partnership: w.partnership,
            raising: w.raising,
            receiving: w.receiving,
            route: "main",
            stage: "stage-1",
            open: true,
            acknowledged: false,
            participants: &[],
        };
        assert_eq!(owner_is_party(&case, owner), expected, "{name}");
    }

    #[test]
    fn an_action_is_owned_by_a_party() {
        let w = world();
        check_owner("the raising agency", &w, w.raising, true);
        check_owner("the receiving agency", &w, w.receiving, true);
        check_owner("another agency of the partnership", &w, w.bystander, false);
        check_owner("an agency of nowhere", &w, AgencyId::new(), false);
    }

    #[test]
    fn a_case_keeps_a_bounded_number_of_views_and_actions() {
        #[track_caller]
        fn check(held: u64, most: usize, expected: bool) {
            assert_eq!(has_room(held, most), expected, "{held} of {most}");
        }
        check(0, MOST_VIEWS_PER_CASE, true);
        check(49, MOST_VIEWS_PER_CASE, true);
        check(50, MOST_VIEWS_PER_CASE, false);
        check(51, MOST_ACTIONS_PER_CASE, false);
        check(u64::MAX, MOST_ACTIONS_PER_CASE, false);
    }

    #[test]
    fn statistics_are_for_the_roles_the_protocol_names_and_statistics_clients() {
        let w = world();
        #[track_caller]
        fn check(w: &World, name: &str, who: Actor, expected: Result<(), Vec<Role>>) {
            for protocol in &w.protocols {
                let got = may_read_statistics(protocol, &who);
                let want = expected.clone().map_err(|_| {
                    let mut roles = protocol.read_statistics().to_vec();
                    roles.sort_unstable_by_key(|r| r.as_str());
                    roles.dedup();
                    roles
                });
                assert_eq!(got, want, "{name} under {}", protocol.id());
            }
        }
        check(&w, "a board chair", actor(&w, Some(Role::BoardChair), None), Ok(()));
        check(
            &w,
            "a practitioner",
            actor(&w, Some(Role::Practitioner), Some(w.raising)),
            Err(vec![]),
        );
        let mut client = actor(&w, None, None);
        client.scopes = BTreeSet::from([Scope::StatisticsRead]);
        check(&w, "a statistics client", client, Ok(()));
        check(&w, "a cases:read client", actor(&w, None, Some(w.raising)), Err(vec![]));
    }

    #[test]
    fn the_board_queue_is_the_board_chairs() {
        let w = world();
        assert!(may_read_board_queue(&actor(&w, Some(Role::BoardChair), None)));
        for role in [Role::Practitioner, Role::Manager, Role::SafeguardingLead, Role::HeadOfService]
        {
            assert!(!may_read_board_queue(&actor(&w, Some(role), Some(w.raising))), "{role:?}");
        }
        assert!(!may_read_board_queue(&actor(&w, None, Some(w.raising))), "a client");
    }

    #[test]
    fn feedback_is_a_closed_case_partys_person() {
        let w = world();
        let case = |open: bool| CaseFacts {
            partnership: w.partnership,
            raising: w.raising,
            receiving: w.receiving,
            route: "r",
            stage: "s",
            open,
            acknowledged: false,
            participants: &[],
        };
        #[track_caller]
        fn check(
            name: &str,
            case: CaseFacts<'_>,
            who: &Actor,
            expected: Result<AgencyId, FeedbackRefusal>,
        ) {
            assert_eq!(may_give_feedback(&case, who), expected, "{name}");
        }
        let raising = actor(&w, Some(Role::Practitioner), Some(w.raising));
        let receiving = actor(&w, Some(Role::HeadOfService), Some(w.receiving));
        check("the raising side, closed", case(false), &raising, Ok(w.raising));
        check("the receiving side, closed", case(false), &receiving, Ok(w.receiving));
        check("the raising side, open", case(true), &raising, Err(FeedbackRefusal::Open));
        let bystander = actor(&w, Some(Role::Manager), Some(w.bystander));
        check("another agency", case(false), &bystander, Err(FeedbackRefusal::NotVisible));
        let chair = actor(&w, Some(Role::BoardChair), None);
        check("a board chair", case(false), &chair, Err(FeedbackRefusal::NoAgency));
        let client = actor(&w, None, Some(w.raising));
        check("a cases:read client", case(false), &client, Err(FeedbackRefusal::NoRole));
        let mut elsewhere = raising.clone();
        elsewhere.partnership = PartnershipId::new();
        check("another partnership", case(false), &elsewhere, Err(FeedbackRefusal::NotVisible));
        // Visibility comes before everything: an open case of another
        // agency is not found, not "open".
        check("another agency, open", case(true), &bystander, Err(FeedbackRefusal::NotVisible));
    }

    #[test]
    fn anonymous_callers_read_only_what_the_settings_open() {
        for (field, expected) in [
            ("__typename", AnonymousRead::Always),
            ("__schema", AnonymousRead::Introspection),
            ("__type", AnonymousRead::Introspection),
            ("partnerships", AnonymousRead::Directory),
            ("agencies", AnonymousRead::Directory),
            ("cases", AnonymousRead::Never),
            ("case", AnonymousRead::Never),
            ("caseEvents", AnonymousRead::Never),
            ("boardStatistics", AnonymousRead::Never),
            ("protocols", AnonymousRead::Never),
            ("__other", AnonymousRead::Never),
        ] {
            assert_eq!(anonymous_root_field(field), expected, "{field}");
        }
    }
}

// ---------------------------------------------------------------------
// Webhooks: who manages endpoints, and which cases' events an endpoint
// receives.
// ---------------------------------------------------------------------

/// Whose a webhook endpoint is, which decides what it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOwner {
    /// An agency's: the events of the cases it raised or received.
    Agency {
        /// The agency's partnership.
        partnership: PartnershipId,
        /// The agency.
        agency: AgencyId,
    },
    /// A partnership's (its business unit, through a `statistics:read`
    /// client without an agency): the events of all its cases.
    Partnership(PartnershipId),
}

/// Why a caller may not change a partnership's directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryAdminRefusal {
    /// A person's token, or a client without the scope.
    #[error(
        "the directory is changed by machine clients with the directory:admin scope (a \
         partnership's business unit)"
    )]
    NotAnAdministrator,
}

/// Whether `actor` may change the agencies of `partnership`: a machine
/// client (no role) with `directory:admin`, of that partnership (another
/// partnership is not found, as every other thing out of scope).
pub fn may_administer_directory(actor: &Actor) -> Result<PartnershipId, DirectoryAdminRefusal> {
    use super::role::Scope;
    if actor.role.is_some() || !actor.has_scope(Scope::DirectoryAdmin) {
        return Err(DirectoryAdminRefusal::NotAnAdministrator);
    }
    Ok(actor.partnership)
}

/// Why a caller may not manage webhook endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRefusal {
    /// Without the `webhooks:manage` scope, or a person's token.
    #[error("webhook endpoints are managed by machine clients with the webhooks:manage scope")]
    NotAManager,
    /// The client names no agency and is no `statistics:read` client of
    /// its partnership.
    #[error("a webhooks:manage client needs an agency, or statistics:read for its partnership")]
    NoOwner,
}

/// Whose endpoints `actor` manages: a machine client (no role) with
/// `webhooks:manage` manages its agency's, or, naming no agency and
/// holding `statistics:read`, its partnership's.
pub fn webhook_owner(actor: &Actor) -> Result<WebhookOwner, WebhookRefusal> {
    use super::role::Scope;
    if actor.role.is_some() || !actor.has_scope(Scope::WebhooksManage) {
        return Err(WebhookRefusal::NotAManager);
    }
    match actor.agency {
        Some(agency) => Ok(WebhookOwner::Agency { partnership: actor.partnership, agency }),
        None if actor.has_scope(Scope::StatisticsRead) => {
            Ok(WebhookOwner::Partnership(actor.partnership))
        }
        None => Err(WebhookRefusal::NoOwner),
    }
}

impl WebhookOwner {
    /// The owner of a stored endpoint.
    pub fn of(partnership: PartnershipId, agency: Option<AgencyId>) -> Self {
        match agency {
            Some(agency) => Self::Agency { partnership, agency },
            None => Self::Partnership(partnership),
        }
    }

    /// The owner's partnership.
    pub fn partnership(self) -> PartnershipId {
        match self {
            Self::Agency { partnership, .. } | Self::Partnership(partnership) => partnership,
        }
    }

    /// The owner's agency, if an agency owns it.
    pub fn agency(self) -> Option<AgencyId> {
        match self {
            Self::Agency { agency, .. } => Some(agency),
            Self::Partnership(_) => None,
        }
    }

    /// Whether an endpoint of this owner receives the events of a case
    /// with these parties and current `participants`: exactly what a
    /// reader of the owner's scope may see (an agency's token: the cases it
    /// is party to or takes part in; the partnership's board: its cases).
    pub fn receives(
        self,
        partnership: PartnershipId,
        raising: AgencyId,
        receiving: AgencyId,
        participants: &[AgencyId],
    ) -> bool {
        self.visibility().allows(partnership, raising, receiving)
            || matches!(self, Self::Agency { partnership: p, agency }
                if p == partnership && participants.contains(&agency))
    }

    /// The cases whose events the endpoint receives, as a visibility.
    pub fn visibility(self) -> super::actor::CaseVisibility {
        use super::actor::CaseVisibility;
        match self {
            Self::Agency { partnership, agency } => CaseVisibility::Parties { partnership, agency },
            Self::Partnership(p) => CaseVisibility::Partnership(p),
        }
    }
}

#[cfg(test)]
mod webhook_tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::role::Scope;

    fn client(role: Option<Role>, scopes: &[Scope], agency: Option<AgencyId>) -> Actor {
        Actor {
            issuer: "i".into(),
            sub: "s".into(),
            role,
            scopes: scopes.iter().copied().collect::<BTreeSet<_>>(),
            partnership: PartnershipId::from_uuid(uuid::Uuid::from_u128(1)),
            agency,
        }
    }

    #[track_caller]
    fn check(name: &str, who: &Actor, expected: Result<WebhookOwner, WebhookRefusal>) {
        assert_eq!(webhook_owner(who), expected, "{name}");
    }

    #[test]
    fn endpoints_are_managed_by_webhooks_clients_for_their_agency_or_partnership() {
        let ours = AgencyId::from_uuid(uuid::Uuid::from_u128(2));
        let p = PartnershipId::from_uuid(uuid::Uuid::from_u128(1));
        let agency = WebhookOwner::Agency { partnership: p, agency: ours };
        use Scope::{CasesRead, StatisticsRead, WebhooksManage};
        check("an agency's client", &client(None, &[WebhooksManage], Some(ours)), Ok(agency));
        check(
            "with cases:read too",
            &client(None, &[WebhooksManage, CasesRead], Some(ours)),
            Ok(agency),
        );
        check(
            "a statistics client naming an agency: the agency's",
            &client(None, &[WebhooksManage, StatisticsRead], Some(ours)),
            Ok(agency),
        );
        check(
            "a statistics client of the partnership: the partnership's",
            &client(None, &[WebhooksManage, StatisticsRead], None),
            Ok(WebhookOwner::Partnership(p)),
        );
        check(
            "no agency, no statistics",
            &client(None, &[WebhooksManage], None),
            Err(WebhookRefusal::NoOwner),
        );
        check(
            "a cases:read client",
            &client(None, &[CasesRead], Some(ours)),
            Err(WebhookRefusal::NotAManager),
        );
        check(
            "a statistics client",
            &client(None, &[StatisticsRead], None),
            Err(WebhookRefusal::NotAManager),
        );
        for role in Role::ALL {
            check(
                "a person, even with the scope",
                &client(Some(role), &[WebhooksManage], Some(ours)),
                Err(WebhookRefusal::NotAManager),
            );
        }
    }

    #[rustfmt::skip]
    #[test]
    fn the_directory_is_administered_by_directory_clients_of_their_partnership() {
        use Scope::{CasesRead, DirectoryAdmin, StatisticsRead, System, WebhooksManage};
        let p = PartnershipId::from_uuid(uuid::Uuid::from_u128(1));
        let ours = Some(AgencyId::from_uuid(uuid::Uuid::from_u128(2)));
        let no = Err(DirectoryAdminRefusal::NotAnAdministrator);
        let rows: Vec<(&str, Actor, Result<PartnershipId, DirectoryAdminRefusal>)> = vec![
            ("a directory client of the partnership", client(None, &[DirectoryAdmin], None), Ok(p)),
            ("one naming an agency: still the partnership's", client(None, &[DirectoryAdmin], ours), Ok(p)),
            ("with other scopes too", client(None, &[DirectoryAdmin, StatisticsRead], None), Ok(p)),
            ("a cases:read client", client(None, &[CasesRead], ours), no),
            ("a statistics client", client(None, &[StatisticsRead], None), no),
            ("a webhooks client", client(None, &[WebhooksManage], None), no),
            ("the server itself", client(None, &[System], None), no),
        ];
        for (name, who, expected) in rows {
            assert_eq!(may_administer_directory(&who), expected, "{name}");
        }
        for role in Role::ALL {
            assert_eq!(may_administer_directory(&client(Some(role), &[DirectoryAdmin], ours)), no, "a {role}, even with the scope");
        }
    }

    #[test]
    fn an_endpoint_receives_what_its_owner_may_read() {
        let p = PartnershipId::new();
        let other_p = PartnershipId::new();
        let (ours, a, b) = (AgencyId::new(), AgencyId::new(), AgencyId::new());
        #[track_caller]
        fn check(name: &str, owner: WebhookOwner, got: [bool; 4], expected: [bool; 4]) {
            assert_eq!(got, expected, "{name}: {owner:?}");
        }
        let cases = |o: WebhookOwner| {
            [
                o.receives(p, ours, a, &[]),       // we raised it
                o.receives(p, a, ours, &[]),       // we received it
                o.receives(p, a, b, &[]),          // others' case in our partnership
                o.receives(other_p, ours, a, &[]), // another partnership
            ]
        };
        let agency = WebhookOwner::Agency { partnership: p, agency: ours };
        check("an agency's", agency, cases(agency), [true, true, false, false]);
        let partnership = WebhookOwner::Partnership(p);
        check("a partnership's", partnership, cases(partnership), [true, true, true, false]);
        assert_eq!(WebhookOwner::of(p, Some(ours)), agency);
        assert_eq!(WebhookOwner::of(p, None), partnership);
        // An agency brought into others' case receives it, in its own
        // partnership only; another agency's endpoint does not.
        assert!(agency.receives(p, a, b, &[ours]));
        assert!(!agency.receives(other_p, a, b, &[ours]));
        let theirs = WebhookOwner::Agency { partnership: p, agency: b };
        assert!(!theirs.receives(p, a, ours, &[a]));
    }
}

// ---------------------------------------------------------------------
// Protocols: who publishes a partnership's protocol versions.
// ---------------------------------------------------------------------

/// Why a caller may not publish a version of a partnership's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolAdminRefusal {
    /// A person's token, or a client without `protocols:admin`.
    #[error("protocol versions are published by machine clients with the protocols:admin scope")]
    NotAnAdmin,
    /// A `protocols:admin` client of another partnership.
    #[error("a protocols:admin client publishes only its own partnership's protocol")]
    OtherPartnership,
}

/// May `actor` publish a version of `partnership`'s protocol: a machine
/// client (no role) with `protocols:admin` of that partnership.
pub fn may_publish_protocol(
    actor: &Actor,
    partnership: PartnershipId,
) -> Result<(), ProtocolAdminRefusal> {
    use super::role::Scope;
    if actor.role.is_some() || !actor.has_scope(Scope::ProtocolsAdmin) {
        return Err(ProtocolAdminRefusal::NotAnAdmin);
    }
    if actor.partnership != partnership {
        return Err(ProtocolAdminRefusal::OtherPartnership);
    }
    Ok(())
}

#[cfg(test)]
mod protocol_admin_tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::role::Scope;

    fn who(role: Option<Role>, scopes: &[Scope], partnership: u128) -> Actor {
        Actor {
            issuer: "i".into(),
            sub: "s".into(),
            role,
            scopes: scopes.iter().copied().collect::<BTreeSet<_>>(),
            partnership: PartnershipId::from_uuid(uuid::Uuid::from_u128(partnership)),
            agency: None,
        }
    }

    #[track_caller]
    fn check(name: &str, actor: &Actor, expected: Result<(), ProtocolAdminRefusal>) {
        let ours = PartnershipId::from_uuid(uuid::Uuid::from_u128(1));
        assert_eq!(may_publish_protocol(actor, ours), expected, "{name}");
    }

    #[test]
    fn protocols_are_published_by_their_partnerships_admin_clients() {
        use ProtocolAdminRefusal::{NotAnAdmin, OtherPartnership};
        use Scope::{CasesRead, ProtocolsAdmin, StatisticsRead, WebhooksManage};
        check("our admin client", &who(None, &[ProtocolsAdmin], 1), Ok(()));
        check("with other scopes too", &who(None, &[ProtocolsAdmin, StatisticsRead], 1), Ok(()));
        check(
            "another partnership's admin",
            &who(None, &[ProtocolsAdmin], 2),
            Err(OtherPartnership),
        );
        check("a statistics client", &who(None, &[StatisticsRead], 1), Err(NotAnAdmin));
        check("a webhooks client", &who(None, &[WebhooksManage], 1), Err(NotAnAdmin));
        check("a cases:read client", &who(None, &[CasesRead], 1), Err(NotAnAdmin));
        for role in Role::ALL {
            check(
                "a person, even with the scope",
                &who(Some(role), &[ProtocolsAdmin], 1),
                Err(NotAnAdmin),
            );
        }
    }
}
