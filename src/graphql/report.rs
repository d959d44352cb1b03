//! The Resolution of Professional Differences Report and the board queue.

use std::sync::Arc;

use crate::graphql::scalars::DateTime;
use async_graphql::{Context, ID, Object, Result};

use super::case::Case;
use super::directory::{Agency, load_agency};
use super::error::{GqlResult, bad_input};
use super::loaders::Loaders;
use super::records::{AgencyView, AgreedAction};
use super::workflow::actor;
use crate::domain::ids::CaseId;
use crate::graphql::cost;
use crate::http::RequestId;
use crate::service::protocols::Library;
use crate::service::report;

/// The Resolution of Professional Differences Report (the form of the
/// Western Bay protocol), derived from the case and its trail: never typed
/// twice. Available from the stage at which the protocol asks for it, to
/// the roles it allows.
pub struct Report(pub report::Report);

/// The Resolution of Professional Differences Report (the form of the
/// Western Bay protocol), derived from the case and its trail: never typed
/// twice. Available from the stage at which the protocol asks for it, to
/// the roles it allows.
#[Object]
impl Report {
    /// The case.
    async fn case(&self) -> Case {
        Case(self.0.case.clone())
    }
    /// The child's pseudonymous reference.
    async fn child_reference(&self) -> &str {
        &self.0.case.child_reference
    }
    /// The nature of the difference: its subject category.
    async fn category(&self) -> &str {
        &self.0.case.category
    }
    /// Summary of the reason for the dispute, as raised.
    #[graphql(complexity = cost::FREE_TEXT)]
    async fn summary(&self) -> &str {
        &self.0.case.summary
    }
    /// The agency raising the professional difference.
    async fn raising_agency(&self, ctx: &Context<'_>) -> Result<Agency> {
        load_agency(ctx, self.0.case.raising_agency_id).await
    }
    /// The agency receiving it.
    async fn receiving_agency(&self, ctx: &Context<'_>) -> Result<Agency> {
        load_agency(ctx, self.0.case.receiving_agency_id).await
    }
    /// The professionals who acted on the case, by first action (ids and
    /// designations; names are not kept).
    #[graphql(complexity = "cost::list(cost::PER_CASE_LIST, child_complexity)")]
    async fn professionals(&self) -> Vec<Professional> {
        self.0.professionals.iter().cloned().map(Professional).collect()
    }
    /// The views of all agencies concerned, oldest first.
    #[graphql(complexity = "cost::list(cost::PER_CASE_LIST, child_complexity)")]
    async fn views(&self) -> Vec<AgencyView> {
        self.0.views.iter().cloned().map(AgencyView).collect()
    }
    /// Stages reached, in order, with the date each was reached.
    #[graphql(complexity = "cost::list(cost::PER_CASE_LIST, child_complexity)")]
    async fn stages_reached(&self) -> Vec<StageReached> {
        self.0.stages.iter().cloned().map(StageReached).collect()
    }
    /// The stage at which resolution was achieved (null while open).
    async fn resolved_at_stage(&self) -> Option<&str> {
        self.0.closed_at.map(|_| self.0.case.stage.as_str())
    }
    /// When the case was resolved or withdrawn.
    async fn closed_at(&self) -> Option<DateTime> {
        self.0.closed_at.map(DateTime)
    }
    /// The agreed outcome (or the reason for withdrawal).
    #[graphql(complexity = cost::FREE_TEXT)]
    async fn outcome(&self) -> Option<&str> {
        self.0.outcome.as_deref()
    }
    /// Agreed actions, by due date.
    #[graphql(complexity = "cost::list(cost::PER_CASE_LIST, child_complexity)")]
    async fn agreed_actions(&self) -> Vec<AgreedAction> {
        self.0.actions.iter().cloned().map(AgreedAction).collect()
    }
    /// Learning recorded at resolution.
    #[graphql(complexity = cost::FREE_TEXT)]
    async fn learning(&self) -> Option<&str> {
        self.0.learning.as_deref()
    }
    /// Time taken to reach resolution, in working days (to today while open).
    async fn working_days_taken(&self) -> Option<i64> {
        self.0.working_days_taken
    }
}

/// A professional who acted on a case.
pub struct Professional(report::Professional);

/// A professional who acted on a case.
#[Object]
impl Professional {
    /// The token subject they acted as.
    async fn sub(&self) -> &str {
        &self.0.sub
    }
    /// Designation: the role they acted in.
    async fn designation(&self) -> Option<&str> {
        self.0.role.as_deref()
    }
    /// Their agency.
    async fn agency(&self, ctx: &Context<'_>) -> Result<Option<Agency>> {
        let Some(id) = self.0.agency_id else { return Ok(None) };
        let loaders = ctx.data::<Loaders>()?;
        Ok(loaders.agency.load_one(id).await.gql()?.map(Agency))
    }
    /// When they first acted on the case.
    async fn first_acted_at(&self) -> DateTime {
        self.0.first_acted_at.into()
    }
}

/// A stage a case reached.
pub struct StageReached(report::StageReached);

/// A stage a case reached.
#[Object]
impl StageReached {
    /// Stage key.
    async fn stage(&self) -> &str {
        &self.0.stage
    }
    /// When the case reached it.
    async fn reached_at(&self) -> DateTime {
        self.0.at.into()
    }
}

/// Report and board queue queries.
#[derive(Default)]
pub struct ReportQuery;

#[Object]
impl ReportQuery {
    /// The Resolution of Professional Differences Report of a case. Reading
    /// it is logged.
    async fn report(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Identifier of the case.")] case_id: ID,
    ) -> Result<Report> {
        let id: CaseId =
            case_id.parse().map_err(|_| bad_input("caseId", "not a valid identifier"))?;
        let actor = actor(ctx)?;
        let db = ctx.data::<sea_orm::DatabaseConnection>()?;
        let protocols = ctx.data::<Arc<Library>>()?;
        let request_id = ctx.data::<RequestId>()?.0.as_deref();
        report::report(db, protocols, actor, id, request_id).await.map(Report).gql()
    }

    /// The board chair's queue: the partnership's open cases at the stages
    /// where the protocol tells the board (Western Bay: stages 3 and 4),
    /// longest waiting first, the first `first` of them. Each case's
    /// report is `report(caseId)`; `cases` with a stage filter pages
    /// through a longer queue.
    #[graphql(complexity = "cost::page(first, child_complexity)")]
    async fn board_queue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many of the longest waiting, 1 to 100.", default = 50)] first: i32,
    ) -> Result<Vec<Case>> {
        if !(1..=100).contains(&first) {
            return Err(super::error::bad_input("first", "between 1 and 100"));
        }
        let actor = actor(ctx)?;
        let db = ctx.data::<sea_orm::DatabaseConnection>()?;
        let protocols = ctx.data::<Arc<Library>>()?;
        let limit = u64::try_from(first).unwrap_or(50);
        let list = report::board_queue(db, protocols, actor, limit).await.gql()?;
        super::case::prefetch(ctx, &ctx.look_ahead(), &list).await?;
        Ok(list.into_iter().map(Case).collect())
    }
}
