//! Cases.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use super::directory::{Agency, Partnership};
use super::error::{GqlResult, bad_input};
use super::loaders::Loaders;
use crate::domain::access::{CaseFacts, case_permissions};
use crate::domain::actor::{CaseVisibility, Viewer};
use crate::domain::catalog::Catalog;
use crate::domain::ids::CaseId;
use crate::domain::policy::Action;
use crate::service::{ServiceError, cases};

/// Whether a case is still being worked on.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::service::cases::CaseStatus")]
pub enum CaseStatus {
    /// Raised and not yet closed.
    Open,
    /// Closed with an outcome.
    Resolved,
    /// Closed by the raising side without an outcome.
    Withdrawn,
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct Case(pub cases::Case);

/// One professional difference: an agency disagrees with a decision or
/// action of another agency about one child.
#[Object]
impl Case {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Open, resolved or withdrawn.
    async fn status(&self) -> CaseStatus {
        self.0.status.into()
    }

    /// Identifier of the protocol the case was raised under.
    async fn protocol_id(&self) -> &str {
        &self.0.protocol_id
    }

    /// Version of that protocol; a case keeps the version it was raised under.
    async fn protocol_version(&self) -> i32 {
        self.0.protocol_version
    }

    /// The route through the protocol (protocols with one route call it `main`).
    async fn route(&self) -> &str {
        &self.0.route
    }

    /// Key of the stage the case is at, e.g. `stage-2`.
    async fn stage(&self) -> &str {
        &self.0.stage
    }

    /// The child's pseudonymous reference (agency case numbers; never a name).
    async fn child_reference(&self) -> &str {
        &self.0.child_reference
    }

    /// Subject category of the difference.
    async fn category(&self) -> &str {
        &self.0.category
    }

    /// Optimistic-concurrency version: raised by every change. Send it back as
    /// `expectedVersion` to refuse a change based on a stale view.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When the case was raised.
    async fn raised_at(&self) -> DateTime<Utc> {
        self.0.raised_at
    }

    /// When the case last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The partnership whose protocol governs the case.
    async fn partnership(&self, ctx: &Context<'_>) -> Result<Partnership> {
        let loaders = ctx.data::<Loaders>()?;
        loaders
            .partnership
            .load_one(self.0.partnership_id)
            .await
            .gql()?
            .map(Partnership)
            .ok_or(ServiceError::NotFound("partnership"))
            .gql()
    }

    /// The agency that raised the difference.
    async fn raising_agency(&self, ctx: &Context<'_>) -> Result<Agency> {
        load_agency(ctx, self.0.raising_agency_id).await
    }

    /// The agency whose decision or action is disputed.
    async fn receiving_agency(&self, ctx: &Context<'_>) -> Result<Agency> {
        load_agency(ctx, self.0.receiving_agency_id).await
    }

    /// What the caller may do with this case now, one flag per action, so a
    /// front end shows exactly the buttons that will work. Computed by the
    /// same rule the mutations apply: the protocol's role-by-stage policy,
    /// the case's state, and which side of the dispute the caller is on.
    async fn viewer_can(&self, ctx: &Context<'_>) -> Result<CasePermissions> {
        let Viewer::Actor(actor) = ctx.data::<Viewer>()? else {
            return Ok(CasePermissions::default());
        };
        let catalog = ctx.data::<Arc<Catalog>>()?;
        let c = &self.0;
        let version = u32::try_from(c.protocol_version).unwrap_or(0);
        let protocol = catalog
            .get(&c.protocol_id, version)
            .ok_or(ServiceError::UnknownProtocol(c.protocol_id.clone()))
            .gql()?;
        let facts = CaseFacts {
            partnership: c.partnership_id,
            raising: c.raising_agency_id,
            receiving: c.receiving_agency_id,
            route: &c.route,
            stage: &c.stage,
            open: c.status == cases::CaseStatus::Open,
        };
        Ok(CasePermissions::from_pairs(&case_permissions(protocol, &facts, actor)))
    }
}

/// What the caller may do with a case now. Each flag is what the matching
/// mutation would allow at this moment (a later change of the case may
/// change it).
#[derive(SimpleObject, Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct CasePermissions {
    /// May add a record (discussion, meeting, letter, analysis).
    pub add_record: bool,
    /// May record their agency's view of the dispute.
    pub record_view: bool,
    /// May agree an action with an owner and a due date.
    pub agree_action: bool,
    /// May escalate the case one stage up.
    pub escalate: bool,
    /// May accept the case at its stage (the receiving side's lead).
    pub accept: bool,
    /// May resolve the case.
    pub resolve: bool,
    /// May withdraw the case (the raising side).
    pub withdraw: bool,
    /// May move the case more than one stage up (immediate risk).
    pub skip_stage: bool,
    /// May read the case's audit trail.
    pub read_audit_trail: bool,
    /// May read the Resolution of Professional Differences Report.
    pub read_report: bool,
}

impl CasePermissions {
    fn from_pairs(pairs: &[(Action, bool)]) -> Self {
        let mut p = Self::default();
        for &(action, allowed) in pairs {
            let flag = match action {
                Action::AddRecord => &mut p.add_record,
                Action::RecordView => &mut p.record_view,
                Action::AgreeAction => &mut p.agree_action,
                Action::Escalate => &mut p.escalate,
                Action::Accept => &mut p.accept,
                Action::Resolve => &mut p.resolve,
                Action::Withdraw => &mut p.withdraw,
                Action::SkipStage => &mut p.skip_stage,
                Action::ReadAuditTrail => &mut p.read_audit_trail,
                Action::ReadReport => &mut p.read_report,
                Action::Raise | Action::StartHigher | Action::ReadStatistics => continue,
            };
            *flag = allowed;
        }
        p
    }
}

async fn load_agency(ctx: &Context<'_>, id: crate::domain::ids::AgencyId) -> Result<Agency> {
    let loaders = ctx.data::<Loaders>()?;
    loaders
        .agency
        .load_one(id)
        .await
        .gql()?
        .map(Agency)
        .ok_or(ServiceError::NotFound("agency"))
        .gql()
}

/// Queries about cases.
#[derive(Default)]
pub struct CaseQuery;

#[Object]
impl CaseQuery {
    /// One case by id. A case the caller may not see is `NOT_FOUND`, exactly
    /// as if it did not exist: people see the cases their agency raised or
    /// received, board chairs their partnership's, `cases:read` clients their
    /// agency's; `statistics:read` clients see no case.
    async fn case(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Identifier of the case.")] id: ID,
    ) -> Result<Case> {
        let id: CaseId = id.parse().map_err(|_| bad_input("id", "not a valid identifier"))?;
        let db = ctx.data::<DatabaseConnection>()?;
        let visibility = match ctx.data::<Viewer>()? {
            Viewer::Anonymous => CaseVisibility::None,
            Viewer::Actor(actor) => actor.case_visibility(),
        };
        cases::get(db, visibility, id).await.map(Case).gql()
    }
}
