//! Who is acting: the five roles of the JWT `role` claim and the scopes of
//! machine clients.
//!
//! The roles are names, not ranks: which role may do what at which stage is
//! protocol data (see `domain::protocol` and `domain::policy`), never a
//! comparison of roles in code. `Ord` exists only to sort role lists.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The role a person acts in, taken from the token's `role` claim.
///
/// Each protocol maps its own wording (line manager, designated doctor,
/// detective inspector, conference chair...) onto these five.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A front-line professional (social worker, teacher, health visitor,
    /// police officer...).
    Practitioner,
    /// A first-line or line manager, supervisor or team manager.
    Manager,
    /// A named or designated safeguarding lead or professional, a child
    /// protection manager or conference chair, as each protocol maps it.
    SafeguardingLead,
    /// A head of service or equivalent senior manager (in some protocols a
    /// director or an agency's board representative).
    HeadOfService,
    /// The chair of the safeguarding partnership or board, standing for the
    /// board and its officers (board manager, scrutineer, review group).
    BoardChair,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Role; 5] = [
        Role::Practitioner,
        Role::Manager,
        Role::SafeguardingLead,
        Role::HeadOfService,
        Role::BoardChair,
    ];

    /// The claim value of the role, e.g. `"safeguarding_lead"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Practitioner => "practitioner",
            Role::Manager => "manager",
            Role::SafeguardingLead => "safeguarding_lead",
            Role::HeadOfService => "head_of_service",
            Role::BoardChair => "board_chair",
        }
    }

    /// Whether a person in this role acts for the board, never for an
    /// agency (a board chair).
    pub fn acts_for_board(self) -> bool {
        self == Role::BoardChair
    }

    /// The role whose claim value is `s` exactly, if any.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a machine client (no person behind it) may read, from the token's
/// `scope` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// `cases:read`: the status of its own agency's cases.
    #[serde(rename = "cases:read")]
    CasesRead,
    /// `statistics:read`: aggregates for its partnership.
    #[serde(rename = "statistics:read")]
    StatisticsRead,
    /// `webhooks:manage`: the webhook endpoints of its agency (or, with
    /// `statistics:read` and no agency, of its partnership).
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
    /// `directory:admin`: its partnership's agencies (create, rename,
    /// deactivate): a partnership's business unit.
    #[serde(rename = "directory:admin")]
    DirectoryAdmin,
    /// Publish versions of the partnership's protocol (a partnership's
    /// business unit, not an agency's system).
    #[serde(rename = "protocols:admin")]
    ProtocolsAdmin,
    /// The server itself, acting where its protocol says a change happens
    /// by itself (an escalation on breach). Never read from a token: not
    /// in [`Scope::ALL`], so [`Scope::parse`] never returns it.
    #[serde(rename = "system")]
    System,
}

impl Scope {
    /// Every scope, in declaration order.
    pub const ALL: [Scope; 5] = [
        Scope::CasesRead,
        Scope::StatisticsRead,
        Scope::WebhooksManage,
        Scope::DirectoryAdmin,
        Scope::ProtocolsAdmin,
    ];

    /// The claim value of the scope, e.g. `"cases:read"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CasesRead => "cases:read",
            Scope::StatisticsRead => "statistics:read",
            Scope::WebhooksManage => "webhooks:manage",
            Scope::DirectoryAdmin => "directory:admin",
            Scope::ProtocolsAdmin => "protocols:admin",
            Scope::System => "system",
        }
    }

    /// The scope whose claim value is `s` exactly, if any.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_role(input: &str, expected: Option<Role>) {
        assert_eq!(Role::parse(input), expected, "Role::parse({input:?})");
        if let Some(role) = expected {
            assert_eq!(role.as_str(), input);
            assert_eq!(role.to_string(), input);
        }
    }

    #[test]
    fn roles_parse_from_their_claim_values_only() {
        check_role("practitioner", Some(Role::Practitioner));
        check_role("manager", Some(Role::Manager));
        check_role("safeguarding_lead", Some(Role::SafeguardingLead));
        check_role("head_of_service", Some(Role::HeadOfService));
        check_role("board_chair", Some(Role::BoardChair));
        check_role("Manager", None);
        check_role("safeguarding-lead", None);
        check_role(" manager", None);
        check_role("", None);
        check_role("admin", None);
    }

    #[test]
    fn every_role_round_trips() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }

    #[track_caller]
    fn check_scope(input: &str, expected: Option<Scope>) {
        assert_eq!(Scope::parse(input), expected, "Scope::parse({input:?})");
        if let Some(scope) = expected {
            assert_eq!(scope.as_str(), input);
            assert_eq!(scope.to_string(), input);
        }
    }

    #[test]
    fn scopes_parse_from_their_claim_values_only() {
        check_scope("cases:read", Some(Scope::CasesRead));
        check_scope("statistics:read", Some(Scope::StatisticsRead));
        check_scope("webhooks:manage", Some(Scope::WebhooksManage));
        check_scope("directory:admin", Some(Scope::DirectoryAdmin));
        check_scope("protocols:admin", Some(Scope::ProtocolsAdmin));
        check_scope("cases:write", None);
        // The server's own scope is never read from a token.
        check_scope("system", None);
        check_scope("cases_read", None);
        check_scope("", None);
    }
}
