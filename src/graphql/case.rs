//! Cases.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{NaiveDate, Utc};

use crate::graphql::scalars::{Date, DateTime};
use sea_orm::DatabaseConnection;

use super::directory::{Agency, Partnership, load_agency};
use super::error::{GqlResult, bad_input};
use super::events::CaseEventConnection;
use super::loaders::{EventPageKey, Loaders, RecordPageKey};
use super::records::{AgencyView, AgreedAction, Record};
use crate::domain::access::{case_permissions, may_record_family_told};
use crate::domain::actor::{CaseVisibility, Viewer};
use crate::domain::calendar::Calendar;
use crate::domain::catalog::Catalog;
use crate::domain::ids::{AgencyId, CaseId, ChildReference};
use crate::domain::policy::Action;
use crate::domain::step_down;
use crate::graphql::cost;
use crate::http::RequestId;
use crate::service::records::{self, FreeText};
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

/// The order of the case list.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq, Default)]
#[graphql(remote = "crate::service::cases::CaseOrder")]
pub enum CaseOrder {
    /// Newest raised first (`raisedAt` descending, ties by id descending).
    #[default]
    RaisedAt,
    /// Least recently changed first (`updatedAt` ascending, ties by id
    /// ascending): what a system polling for changes follows, with
    /// `filter.updatedAfter` or page after page by `endCursor`.
    UpdatedAt,
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

    /// The child's pseudonymous reference (agency case numbers; never a
    /// name). Identifies the child to whoever holds the agency's files, so
    /// each read is logged like free text.
    async fn child_reference(&self, ctx: &Context<'_>) -> Result<&str> {
        log_read(ctx, self.0.id, FreeText::ChildReference).await?;
        Ok(&self.0.child_reference)
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
    async fn raised_at(&self) -> DateTime {
        self.0.raised_at.into()
    }

    /// When the case last changed.
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }

    /// When the case reached its current stage.
    async fn stage_entered_at(&self) -> Option<DateTime> {
        self.0.stage_entered_at.map(DateTime)
    }

    /// The day the current stage is due (end of that working day), from the
    /// protocol's time limit or the timeframe the escalator stated, in
    /// working days of the partnership's calendar (weekends and bank
    /// holidays excluded). Null when the stage has no limit or the case is
    /// closed.
    async fn due_on(&self) -> Option<Date> {
        self.0.due_on.filter(|_| self.0.status == cases::CaseStatus::Open).map(Date)
    }

    /// Set when the case crossed its protocol's repeated-disagreement
    /// threshold (Pan-Sussex step 5: "a number of similar concerns or
    /// disagreements"), as it was raised or escalated for it: how many
    /// similar cases there were, and the rule's threshold and window. Null
    /// if it never did. Similar: the same two agencies either way round,
    /// the same category, not withdrawn; the board's
    /// `repeatedDisagreements` counts by the same rule.
    async fn repeated_disagreement(&self, ctx: &Context<'_>) -> Result<Option<RepeatedFlag>> {
        let Some(similar) = self.0.repeated_similar_cases else { return Ok(None) };
        let catalog = &super::catalog(ctx)?;
        let c = &self.0;
        let rule = catalog
            .get(&c.protocol_id, u32::try_from(c.protocol_version).unwrap_or(0))
            .and_then(|p| p.rules().repeated_disagreement());
        Ok(Some(RepeatedFlag {
            similar_cases: u32::try_from(similar).unwrap_or(0),
            threshold: rule.map_or(crate::domain::board::REPEATED_AT_LEAST, |r| r.count()),
            window_days: rule.map(|r| r.window_days()),
        }))
    }

    /// When the receiving side acknowledged the case at its current stage
    /// (`acknowledgeCase`); null until then, and again after it moves up.
    async fn acknowledged_at(&self) -> Option<DateTime> {
        self.0.acknowledged_at.map(DateTime)
    }

    /// The instant the current stage is due: the end of `dueOn` in the
    /// United Kingdom (23:59:59 London time). Null when `dueOn` is.
    async fn due_at(&self) -> Option<DateTime> {
        self.0
            .due_on
            .filter(|_| self.0.status == cases::CaseStatus::Open)
            .map(|d| DateTime(crate::domain::deadline::due_at(d)))
    }

    /// Working days from today to `dueOn`: 0 on the day, negative once
    /// passed; null when there is no due date.
    async fn working_days_remaining(&self, ctx: &Context<'_>) -> Result<Option<i64>> {
        Ok(standing(ctx, &self.0)?.map(|s| s.working_days_remaining))
    }

    /// Whether the current stage is past its due date; an overdue stage may
    /// be escalated for that reason.
    async fn overdue(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(standing(ctx, &self.0)?.is_some_and(|s| s.overdue))
    }

    /// The day the family was told of the case, as recorded with
    /// `recordFamilyTold` where the protocol has the rule (Rotherham's
    /// challenge: the Conference Chair makes families aware of the
    /// challenges raised); the latest recording, each one kept in the audit
    /// trail. Null until recorded, and on routes without the rule.
    async fn family_told_on(&self) -> Option<Date> {
        self.0.family_told_on.map(Date)
    }

    /// The conference's step-down to Child in Need planning recorded on the
    /// case (`recordStepDown`, Rotherham's challenge), the day its check is
    /// due, the chair's check (`recordStepDownCheck`) and the case it raised
    /// when not evidenced. Null until a step-down is recorded, and on
    /// routes without the rule.
    async fn step_down(&self, ctx: &Context<'_>) -> Result<Option<super::step_down::StepDown>> {
        super::step_down::StepDown::of(ctx, &self.0)
    }

    /// The case whose step-down check raised this one (it found no CiN
    /// meeting or plan six weeks after the conference, and the challenge
    /// started again): the first case's `stepDown.followUpCase` is this
    /// one. Null for a case raised by `raiseCase`. Batched across a list:
    /// one statement for a page of cases.
    async fn follows_up(&self, ctx: &Context<'_>) -> Result<Option<Case>> {
        super::step_down::linked(ctx, self.0.follows).await
    }

    /// What is disputed. Free text: each read is logged with who read it.
    #[graphql(complexity = cost::FREE_TEXT)]
    async fn summary(&self, ctx: &Context<'_>) -> Result<&str> {
        log_read(ctx, self.0.id, FreeText::Summary).await?;
        Ok(&self.0.summary)
    }

    /// The written records, oldest first (corrections follow what they
    /// correct), a page at a time. Free text: each read is logged with who
    /// read it.
    #[graphql(complexity = "cost::page(first, child_complexity)")]
    async fn records(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100.", default = 50)] first: i32,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<RecordConnection> {
        let key = record_page_key(self.0.id, first, after.as_deref())?;
        reader(ctx)?;
        log_read(ctx, self.0.id, FreeText::Records).await?;
        let loaders = ctx.data::<Loaders>()?;
        let (list, has_next_page) =
            loaders.record_page.load_one(key).await.gql()?.unwrap_or_default();
        Ok(RecordConnection {
            case: self.0.id,
            nodes: list,
            has_next_page,
            has_previous_page: key.after.is_some(),
        })
    }

    /// Records the protocol required before the case left a stage and that
    /// it left without: an escalation for immediate risk is never held up
    /// by them, so the gap is shown here instead (oldest first; empty when
    /// nothing is missing).
    #[graphql(complexity = "cost::list(cost::PER_CASE_LIST, child_complexity)")]
    async fn missing_records(&self, ctx: &Context<'_>) -> Result<Vec<MissingRecord>> {
        let loaders = ctx.data::<Loaders>()?;
        let list = loaders.missing_records.load_one(self.0.id).await.gql()?.unwrap_or_default();
        Ok(list
            .into_iter()
            .map(|m| MissingRecord {
                stage: m.stage,
                kind: m.kind.into(),
                flagged_at: m.flagged_at,
            })
            .collect())
    }

    /// The case's events, oldest first, a page at a time: its timeline, the
    /// same events as `caseEvents` shows (ids and states only). Batched
    /// across a list: one statement for a page of cases.
    #[graphql(complexity = "cost::page(first, child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100.", default = 50)] first: i32,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<CaseEventConnection> {
        let limit = page_size(first)?;
        let after = match after.as_deref() {
            None => None,
            Some(c) => Some(
                super::events::decode(c)
                    .ok_or_else(|| bad_input("after", "not a cursor of this list"))?,
            ),
        };
        let loaders = ctx.data::<Loaders>()?;
        let key = EventPageKey { case: self.0.id, limit, after };
        let (events, has_next_page) =
            loaders.event_page.load_one(key).await.gql()?.unwrap_or_default();
        Ok(CaseEventConnection { events, has_next_page, has_previous_page: after.is_some() })
    }

    /// The agencies taking part beyond the two parties, brought in at a
    /// stage that names them (`Stage.participants`, `joinCase`), every
    /// spell oldest first (`leftAt` null while it takes part). Its people
    /// and clients see the case while it takes part; its people act as the
    /// stage's rule says (`viewerCan`).
    #[graphql(complexity = "cost::list(cost::PER_CASE_LIST, child_complexity)")]
    async fn participants(&self, ctx: &Context<'_>) -> Result<Vec<CaseParticipant>> {
        let loaders = ctx.data::<Loaders>()?;
        let list = loaders.participants.load_one(self.0.id).await.gql()?.unwrap_or_default();
        Ok(list.into_iter().map(CaseParticipant).collect())
    }

    /// The agencies' views of the dispute, oldest first (the latest of each
    /// agency is its current view). Each read is logged.
    #[graphql(complexity = "cost::list(cost::PER_CASE_LIST, child_complexity)")]
    async fn views(&self, ctx: &Context<'_>) -> Result<Vec<AgencyView>> {
        reader(ctx)?;
        log_read(ctx, self.0.id, FreeText::Views).await?;
        let loaders = ctx.data::<Loaders>()?;
        let list = loaders.views.load_one(self.0.id).await.gql()?.unwrap_or_default();
        Ok(list.into_iter().map(AgencyView).collect())
    }

    /// The latest record (only that one is read; batched across a list: one
    /// query for a page). Free text: each read is logged.
    async fn last_record(&self, ctx: &Context<'_>) -> Result<Option<Record>> {
        log_read(ctx, self.0.id, FreeText::LastRecord).await?;
        let loaders = ctx.data::<Loaders>()?;
        Ok(loaders.last_record.load_one(self.0.id).await.gql()?.map(Record))
    }

    /// The steps of the current stage that are timed separately, in the
    /// protocol's order (Rotherham's challenge: the form, then the
    /// response): who owes each, when it is due, and when the record that
    /// completed it was written. Empty where the stage has one time limit.
    /// `dueOn` of the case is its next open milestone's. Batched across a
    /// list: one statement for a page of cases.
    #[graphql(complexity = "cost::list(cost::PER_CASE_LIST, child_complexity)")]
    async fn milestones(&self, ctx: &Context<'_>) -> Result<Vec<CaseMilestone>> {
        milestones_of(ctx, &self.0).await
    }

    /// The current stage's next open milestone (the first not completed):
    /// what is owed next, by whom and by when. Null where the stage has
    /// none open, or no milestones, or the case is closed.
    async fn next_milestone(&self, ctx: &Context<'_>) -> Result<Option<CaseMilestone>> {
        if self.0.status != cases::CaseStatus::Open {
            return Ok(None);
        }
        Ok(milestones_of(ctx, &self.0).await?.into_iter().find(|m| m.completed_at.is_none()))
    }

    /// Who must act next: the party (raising agency, receiving agency or
    /// board), the roles of it that may, the milestone owed (if any) and
    /// by when. By the same rule as `viewerCan`: each role listed may take
    /// the awaited action now (the milestone's record; otherwise to
    /// resolve or escalate). Empty once the case is closed. `myQueue`
    /// lists a case exactly for the parties and roles named here.
    async fn awaiting(&self, ctx: &Context<'_>) -> Result<Vec<super::queue::Awaiting>> {
        let catalog = &super::catalog(ctx)?;
        if self.0.status != cases::CaseStatus::Open {
            return Ok(Vec::new());
        }
        let next = milestones_of(ctx, &self.0)
            .await?
            .into_iter()
            .find(|m| m.completed_at.is_none())
            .map(|m| (m.key, m.due_on.map(|d| d.0)));
        super::queue::awaiting_of(catalog, &self.0, next.as_ref().map(|(k, d)| (k.as_str(), *d)))
    }

    /// The stage the case is at, as its protocol describes it.
    async fn current_stage(&self, ctx: &Context<'_>) -> Result<CurrentStage> {
        let catalog = &super::catalog(ctx)?;
        let c = &self.0;
        let stage = catalog
            .get(&c.protocol_id, u32::try_from(c.protocol_version).unwrap_or(0))
            .and_then(|p| p.stage(&c.route, &c.stage))
            .ok_or(ServiceError::UnknownProtocol(c.protocol_id.clone()))
            .gql()?;
        Ok(CurrentStage {
            key: stage.key().to_owned(),
            number: stage.number(),
            name: stage.name().to_owned(),
            time_limit_working_days: stage.time_limit_working_days(),
            board_told: stage.board_told(),
            questions: super::protocols::questions_of(stage),
        })
    }

    /// The agreed actions, by due date. Their descriptions are free text:
    /// each read is logged.
    #[graphql(complexity = "cost::list(cost::PER_CASE_LIST, child_complexity)")]
    async fn actions(&self, ctx: &Context<'_>) -> Result<Vec<AgreedAction>> {
        reader(ctx)?;
        log_read(ctx, self.0.id, FreeText::Actions).await?;
        let loaders = ctx.data::<Loaders>()?;
        let list = loaders.actions.load_one(self.0.id).await.gql()?.unwrap_or_default();
        Ok(list.into_iter().map(AgreedAction).collect())
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

    /// What the caller may do with this case now and, for each action it
    /// may not, why: the code, message and who may, exactly as the mutation
    /// would refuse it, so a front end can say why a button is missing.
    /// One entry per case action, in a fixed order; same rule as
    /// `viewerCan`. Empty without a token.
    async fn viewer_permissions(&self, ctx: &Context<'_>) -> Result<Vec<ActionPermission>> {
        let Viewer::Actor(actor) = ctx.data::<Viewer>()? else { return Ok(Vec::new()) };
        let catalog = &super::catalog(ctx)?;
        let c = &self.0;
        let protocol = protocol_of_case(catalog, c)?;
        let joined = joined_for(ctx, c, actor).await?;
        let facts = c.facts(&joined);
        Ok(crate::domain::access::CASE_ACTIONS
            .iter()
            .map(|&action| {
                let refused: Option<ServiceError> =
                    crate::domain::access::check(protocol, &facts, actor, action)
                        .err()
                        .map(Into::into);
                let allowed = match &refused {
                    Some(ServiceError::Forbidden { allowed, .. }) => Some(allowed.clone()),
                    _ => None,
                };
                let err = refused.map(|e| async_graphql::ErrorExtensions::extend(&e));
                let code = err.as_ref().and_then(|e| {
                    e.extensions.as_ref().and_then(|x| x.get("code")).and_then(|v| match v {
                        async_graphql::Value::String(s) => Some(s.clone()),
                        _ => None,
                    })
                });
                let allowed = allowed.unwrap_or_default();
                ActionPermission {
                    action: action.into(),
                    allowed: err.is_none(),
                    code,
                    reason: err.map(|e| e.message),
                    allowed_roles: allowed.roles.iter().map(|&r| r.into()).collect(),
                    allowed_sides: allowed.sides.iter().map(|&s| s.into()).collect(),
                }
            })
            .collect())
    }

    /// What the caller may do with this case now, one flag per action, so a
    /// front end shows exactly the buttons that will work. Computed by the
    /// same rule the mutations apply: the protocol's role-by-stage policy,
    /// the case's state, and which side of the dispute the caller is on.
    async fn viewer_can(&self, ctx: &Context<'_>) -> Result<CasePermissions> {
        let Viewer::Actor(actor) = ctx.data::<Viewer>()? else {
            return Ok(CasePermissions::default());
        };
        let catalog = &super::catalog(ctx)?;
        let c = &self.0;
        let protocol = protocol_of_case(catalog, c)?;
        let joined = joined_for(ctx, c, actor).await?;
        let facts = c.facts(&joined);
        let mut can = CasePermissions::from_pairs(&case_permissions(protocol, &facts, actor));
        // Once per stage (acknowledging again is `CONFLICT`).
        can.accept &= c.acknowledged_at.is_none();
        can.record_family_told = may_record_family_told(protocol, &facts, actor).is_ok();
        let step_down = c.step_down.as_ref().map(cases::StepDown::recorded);
        can.record_step_down = step_down::may_record(protocol, &facts, actor, step_down).is_ok();
        can.record_step_down_check =
            step_down::may_check(protocol, &facts, actor, step_down).is_ok();
        Ok(can)
    }
}

/// One spell of an agency's part in a case beyond its two parties.
pub struct CaseParticipant(crate::service::participants::Participant);

/// One spell of an agency's part in a case beyond its two parties: from
/// `joinCase` to `leaveCase`.
#[Object]
impl CaseParticipant {
    /// The agency.
    async fn agency(&self, ctx: &Context<'_>) -> Result<Agency> {
        load_agency(ctx, self.0.agency_id).await
    }
    /// Its kind when it joined (the kind the stage named).
    async fn agency_kind(&self) -> super::directory::AgencyKind {
        self.0.agency_kind.into()
    }
    /// The stage it joined at: what it may do is that stage's rule for it.
    async fn stage(&self) -> &str {
        &self.0.stage
    }
    /// When it joined.
    async fn joined_at(&self) -> DateTime {
        DateTime(self.0.joined_at)
    }
    /// When it left; null while it takes part.
    async fn left_at(&self) -> Option<DateTime> {
        self.0.left_at.map(DateTime)
    }
}

/// Who takes part in the case beyond its parties, for the caller's
/// permission facts: read (batched) only when the caller acts for an
/// agency that is neither party, since for a party or the board it changes
/// nothing.
async fn joined_for(
    ctx: &Context<'_>,
    c: &cases::Case,
    actor: &crate::domain::actor::Actor,
) -> Result<Vec<crate::domain::access::Joined>> {
    if !may_participate(c, actor) {
        return Ok(Vec::new());
    }
    let loaders = ctx.data::<Loaders>()?;
    let list = loaders.participants.load_one(c.id).await.gql()?.unwrap_or_default();
    Ok(list.iter().filter_map(crate::service::participants::Participant::joined).collect())
}

/// Whether the caller acts for an agency that is neither party of `c`.
fn may_participate(c: &cases::Case, actor: &crate::domain::actor::Actor) -> bool {
    actor.acting_agency().is_some_and(|a| a != c.raising_agency_id && a != c.receiving_agency_id)
}

/// The protocol a case was raised under.
fn protocol_of_case<'c>(
    catalog: &'c Catalog,
    c: &cases::Case,
) -> Result<&'c crate::domain::protocol::Protocol> {
    let version = u32::try_from(c.protocol_version).unwrap_or(0);
    catalog
        .get(&c.protocol_id, version)
        .ok_or(ServiceError::UnknownProtocol(c.protocol_id.clone()))
        .gql()
}

/// What the caller may do with a case now, and why not: one entry per
/// action.
#[derive(SimpleObject)]
pub struct ActionPermission {
    /// The action.
    pub action: super::protocols::PolicyAction,
    /// Whether the caller may take it now (as `viewerCan`).
    pub allowed: bool,
    /// When refused: the `extensions.code` the mutation would answer with
    /// (`FORBIDDEN`, `CONFLICT`, `BAD_USER_INPUT`, …).
    pub code: Option<String>,
    /// When refused: the message the mutation would give.
    pub reason: Option<String>,
    /// When refused for the caller's role or side: the roles that may.
    pub allowed_roles: Vec<super::protocols::Role>,
    /// When refused for the caller's role or side: the sides that may.
    pub allowed_sides: Vec<super::protocols::Side>,
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
    /// May acknowledge the case at its stage (`acknowledgeCase`: the
    /// receiving side); false once it is acknowledged there.
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
    /// May record the day the family was told (`recordFamilyTold`: where
    /// the protocol has the rule, by the roles and side it names).
    pub record_family_told: bool,
    /// May record a conference's step-down to Child in Need planning
    /// (`recordStepDown`: where the protocol has the rule, by the roles and
    /// side it names, open or closed); false once the step-down is checked.
    pub record_step_down: bool,
    /// May record the check of the case's step-down
    /// (`recordStepDownCheck`): a step-down is recorded and not yet
    /// checked. Before the due day only a check that finds the meeting and
    /// the plan is accepted.
    pub record_step_down_check: bool,
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

fn reader<'a>(
    ctx: &'a Context<'_>,
) -> Result<(&'a DatabaseConnection, &'a crate::domain::actor::Actor, Option<&'a str>)> {
    let Viewer::Actor(actor) = ctx.data::<Viewer>()? else {
        return Err(ServiceError::NotFound("case")).gql();
    };
    Ok((ctx.data::<DatabaseConnection>()?, actor, ctx.data::<RequestId>()?.0.as_deref()))
}

/// Logs the caller's read of a case's free text through the request's
/// loader: one row per case and free text per request, written before the
/// text is returned (a list writes its page's rows in one INSERT, see
/// [`prefetch`]).
async fn log_read(ctx: &Context<'_>, case: CaseId, what: FreeText) -> Result<()> {
    if let Viewer::Actor(_) = ctx.data::<Viewer>()? {
        ctx.data::<Loaders>()?.read_log.load_one((case, what)).await.gql()?;
    }
    Ok(())
}

/// The loader key of `records(first, after)` of a case, or the input error.
fn record_page_key(case: CaseId, first: i32, after: Option<&str>) -> Result<RecordPageKey> {
    let limit = page_size(first)?;
    let after = match after {
        None => None,
        Some(c) => {
            Some(decode_keyset(c).ok_or_else(|| bad_input("after", "not a cursor of this list"))?)
        }
    };
    Ok(RecordPageKey { case, limit, after })
}

fn standing(
    ctx: &Context<'_>,
    c: &cases::Case,
) -> Result<Option<crate::domain::deadline::Standing>> {
    let Some(due) = c.due_on.filter(|_| c.status == cases::CaseStatus::Open) else {
        return Ok(None);
    };
    let catalog = &super::catalog(ctx)?;
    let protocol = catalog
        .get(&c.protocol_id, u32::try_from(c.protocol_version).unwrap_or(0))
        .ok_or(ServiceError::UnknownProtocol(c.protocol_id.clone()))
        .gql()?;
    let calendar = Calendar::for_id(protocol.calendar())
        .map_err(|e| ServiceError::bad_input("calendar", e.to_string()))
        .gql()?;
    crate::domain::deadline::standing(calendar, due, crate::service::audit::now().date_naive())
        .map(Some)
        .map_err(|e| ServiceError::bad_input("dueOn", e.to_string()))
        .gql()
}

/// Filters of the case list; every one is optional and they combine.
#[derive(async_graphql::InputObject, Default)]
pub struct CaseFilter {
    /// Only this status.
    pub status: Option<CaseStatus>,
    /// Only cases at this stage key.
    pub stage: Option<String>,
    /// Only open cases past (true) or not past (false) their due date.
    pub overdue: Option<bool>,
    /// Only cases this agency raised or received.
    pub agency_id: Option<ID>,
    /// Only this subject category key.
    pub category: Option<String>,
    /// Raised at or after this time.
    pub raised_from: Option<DateTime>,
    /// Raised before this time.
    pub raised_to: Option<DateTime>,
    /// Changed strictly after this time (`updatedAt` later than it). A
    /// poller passes the latest `updatedAt` it has seen. A change takes
    /// its `updatedAt` before it commits, so one that commits late can
    /// carry a time just before another already seen: ask from a little
    /// before that time (the overlap comes twice rather than never).
    /// Feedback on a closed case leaves `updatedAt` (its closing time) as
    /// it is.
    pub updated_after: Option<DateTime>,
    /// Only the cases with this child reference (an agency case number,
    /// checked like `raiseCase`'s `childReference`; exact match). Each case
    /// returned counts as a read of its `childReference` and is logged.
    pub child_reference: Option<String>,
}

/// The stage a case is at.
#[derive(SimpleObject)]
pub struct CurrentStage {
    /// Stage key.
    pub key: String,
    /// Number in the protocol's own numbering.
    pub number: u32,
    /// Name.
    pub name: String,
    /// Time limit in working days, where the protocol gives one.
    pub time_limit_working_days: Option<u32>,
    /// Whether the board is told at this stage.
    pub board_told: bool,
    /// The questions the protocol asks at this stage.
    pub questions: Vec<super::protocols::QuestionGroup>,
}

/// A case that crossed its protocol's repeated-disagreement threshold.
#[derive(SimpleObject)]
pub struct RepeatedFlag {
    /// Similar cases when it crossed (this one included).
    pub similar_cases: u32,
    /// How many make a repeated disagreement (the protocol's rule).
    pub threshold: u32,
    /// Over how many days before the raise they are counted.
    pub window_days: Option<u32>,
}

/// Where one milestone of a case's current stage stands.
#[derive(SimpleObject)]
pub struct CaseMilestone {
    /// Key within the stage (see `Stage.milestones`).
    pub key: String,
    /// What is owed, in the protocol's words.
    pub name: String,
    /// Who owes it.
    pub owed_by: OwedBy,
    /// The day it is due (end of that working day). Null while the
    /// milestone whose completion starts its clock is open.
    pub due_on: Option<Date>,
    /// The instant it is due: the end of `dueOn` in the United Kingdom.
    pub due_at: Option<DateTime>,
    /// When the record that completed it was written; null while open.
    pub completed_at: Option<DateTime>,
    /// Open and past its due date (always false on a closed case).
    pub overdue: bool,
}

/// Who owes a milestone.
#[derive(SimpleObject)]
pub struct OwedBy {
    /// The side of the case.
    pub side: super::protocols::Side,
    /// The roles of that side.
    pub roles: Vec<super::protocols::Role>,
}

/// The milestones of `c`'s current stage, from its records (batched).
async fn milestones_of(ctx: &Context<'_>, c: &cases::Case) -> Result<Vec<CaseMilestone>> {
    use crate::domain::milestone;
    let catalog = &super::catalog(ctx)?;
    let protocol = catalog
        .get(&c.protocol_id, u32::try_from(c.protocol_version).unwrap_or(0))
        .ok_or(ServiceError::UnknownProtocol(c.protocol_id.clone()))
        .gql()?;
    if protocol.stage(&c.route, &c.stage).is_none_or(|s| s.milestones().is_empty()) {
        return Ok(Vec::new());
    }
    let loaders = ctx.data::<Loaders>()?;
    let records = loaders.written_records.load_one(c.id).await.gql()?.unwrap_or_default();
    let side = |agency: Option<crate::domain::ids::AgencyId>| match agency {
        Some(a) if a == c.raising_agency_id => Some(crate::domain::policy::Side::Raising),
        Some(a) if a == c.receiving_agency_id => Some(crate::domain::policy::Side::Receiving),
        _ => None,
    };
    let written: Vec<milestone::Written> = records
        .iter()
        .filter(|r| r.stage == c.stage)
        .map(|r| milestone::Written {
            kind: r.kind,
            side: side(r.author_agency_id),
            at: r.created_at,
        })
        .collect();
    let entered = c.stage_entered_at.unwrap_or(c.raised_at);
    let standings = crate::service::records::milestone_standings(
        protocol, &c.route, &c.stage, entered, &written,
    )
    .gql()?;
    let open = c.status == cases::CaseStatus::Open;
    let today = crate::service::audit::now().date_naive();
    Ok(standings
        .iter()
        .map(|s| CaseMilestone {
            key: s.milestone.key().to_owned(),
            name: s.milestone.name().to_owned(),
            owed_by: OwedBy {
                side: s.milestone.side().into(),
                roles: s.milestone.roles().iter().map(|&r| r.into()).collect(),
            },
            due_on: s.due_on.map(Date),
            due_at: s.due_on.map(|d| DateTime(crate::domain::deadline::due_at(d))),
            completed_at: s.completed_at.map(DateTime),
            overdue: open && s.overdue(today),
        })
        .collect())
}

/// A record a case left a stage without.
#[derive(SimpleObject)]
pub struct MissingRecord {
    /// The stage the case left.
    pub stage: String,
    /// The kind of record it lacked.
    pub kind: super::records::RecordKind,
    /// When the gap was flagged (the escalation).
    pub flagged_at: chrono::DateTime<chrono::Utc>,
}

/// A page of cases.
pub struct CaseConnection {
    nodes: Vec<cases::Case>,
    order: cases::CaseOrder,
    has_next_page: bool,
    has_previous_page: bool,
    count_query: (CaseVisibility, cases::CaseFilter, NaiveDate),
}

impl CaseConnection {
    /// What the page discloses beyond its selection: a filter by child
    /// reference tells which cases are about that child.
    fn disclosed(&self) -> Option<FreeText> {
        self.count_query.1.child_reference.as_ref().map(|_| FreeText::ChildReference)
    }
}

/// A page of cases (Relay-style connection).
#[Object]
impl CaseConnection {
    /// The cases of this page with their cursors.
    async fn edges(&self, ctx: &Context<'_>) -> Result<Vec<CaseEdge>> {
        prefetch_disclosing(ctx, &ctx.look_ahead().field("node"), &self.nodes, self.disclosed())
            .await?;
        Ok(self
            .nodes
            .iter()
            .map(|c| CaseEdge { cursor: encode_cursor(c, self.order), node: c.clone() })
            .collect())
    }

    /// The cases of this page.
    async fn nodes(&self, ctx: &Context<'_>) -> Result<Vec<Case>> {
        prefetch_disclosing(ctx, &ctx.look_ahead(), &self.nodes, self.disclosed()).await?;
        Ok(self.nodes.iter().cloned().map(Case).collect())
    }

    /// Where this page stands in the list.
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            start_cursor: self.nodes.first().map(|c| encode_cursor(c, self.order)),
            end_cursor: self.nodes.last().map(|c| encode_cursor(c, self.order)),
        }
    }

    /// How many cases match the filter in all (one more query, run only
    /// when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> Result<u64> {
        let db = ctx.data::<DatabaseConnection>()?;
        let (visibility, filter, today) = &self.count_query;
        cases::count(db, *visibility, filter, *today).await.gql()
    }
}

/// A case in a page, with its cursor.
pub struct CaseEdge {
    cursor: String,
    node: cases::Case,
}

/// A case in a page, with its cursor.
#[Object]
impl CaseEdge {
    /// Opaque cursor: pass it as `after` to get the cases that follow.
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    /// The case.
    async fn node(&self) -> Case {
        Case(self.node.clone())
    }
}

/// Where a page stands in its list.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// More items follow this page.
    pub has_next_page: bool,
    /// Items precede this page (it was asked for with `after`).
    pub has_previous_page: bool,
    /// Cursor of the first item of the page.
    pub start_cursor: Option<String>,
    /// Cursor of the last item: pass it as `after` for the next page.
    pub end_cursor: Option<String>,
}

/// Loads, in one batch each, what the selection asks of every case of a
/// page, so the per-case resolvers find it in the request's loader cache:
/// a page costs the same number of statements whatever its size. The reads
/// of free text the selection asks for are logged first, all of them in
/// one INSERT. A field under `@skip`/`@include` that is left out is not
/// loaded or logged; one inside a skipped fragment is (logged but not
/// shown: the log errs on the side of a read).
pub(crate) async fn prefetch(
    ctx: &Context<'_>,
    selection: &async_graphql::Lookahead<'_>,
    nodes: &[cases::Case],
) -> Result<()> {
    prefetch_disclosing(ctx, selection, nodes, None).await
}

/// [`prefetch`], logging also a read of `disclosed` for every case of the
/// page (in the same INSERT): what the list's filter told of each case.
async fn prefetch_disclosing(
    ctx: &Context<'_>,
    selection: &async_graphql::Lookahead<'_>,
    nodes: &[cases::Case],
    disclosed: Option<FreeText>,
) -> Result<()> {
    // Every list of cases passes here: their protocol versions are known
    // before any of their fields reads one.
    super::know_versions(ctx, nodes).await?;
    if nodes.is_empty() {
        return Ok(());
    }
    let loaders = ctx.data::<Loaders>()?;
    let ids: Vec<CaseId> = nodes.iter().map(|c| c.id).collect();
    let fields = selected(selection)?;
    let asks = |name: &str| fields.iter().any(|f| f.name() == name);
    if !matches!(ctx.data::<Viewer>()?, Viewer::Anonymous) {
        let reads: Vec<(CaseId, FreeText)> = [
            ("summary", FreeText::Summary),
            ("childReference", FreeText::ChildReference),
            ("records", FreeText::Records),
            ("lastRecord", FreeText::LastRecord),
            ("views", FreeText::Views),
            ("actions", FreeText::Actions),
        ]
        .into_iter()
        .filter(|(name, what)| asks(name) || disclosed == Some(*what))
        .flat_map(|(_, what)| ids.iter().map(move |&id| (id, what)))
        .collect();
        loaders.read_log.load_many(reads).await.gql()?;
    }
    // Agencies the page's nested lists name, loaded with the parties below.
    let mut agencies: Vec<AgencyId> = Vec::new();
    for field in fields.iter().filter(|f| f.name() == "records") {
        let args = field.arguments()?;
        let first = match args.iter().find(|(n, _)| n.as_str() == "first") {
            None => 50,
            Some((_, async_graphql::Value::Number(n))) => {
                n.as_i64().and_then(|n| i32::try_from(n).ok()).unwrap_or(0)
            }
            Some(_) => continue,
        };
        let after = match args.iter().find(|(n, _)| n.as_str() == "after") {
            None | Some((_, async_graphql::Value::Null)) => None,
            Some((_, async_graphql::Value::String(s))) => Some(s.as_str()),
            Some(_) => continue,
        };
        // A bad argument is the resolver's to report, once per case.
        let Ok(keys) =
            ids.iter().map(|&id| record_page_key(id, first, after)).collect::<Result<Vec<_>>>()
        else {
            continue;
        };
        let pages = loaders.record_page.load_many(keys).await.gql()?;
        agencies.extend(
            pages
                .values()
                .flat_map(|(list, _)| list.iter().filter_map(|r| r.author_agency_id))
                .map(AgencyId::from_uuid),
        );
        if field.selection_set().any(|f| f.name() == "totalCount") {
            loaders.record_count.load_many(ids.iter().copied()).await.gql()?;
        }
    }
    if asks("lastRecord") {
        let last = loaders.last_record.load_many(ids.iter().copied()).await.gql()?;
        agencies.extend(last.values().filter_map(|r| r.author_agency_id).map(AgencyId::from_uuid));
    }
    if asks("views") {
        let views = loaders.views.load_many(ids.iter().copied()).await.gql()?;
        agencies.extend(views.values().flatten().map(|v| AgencyId::from_uuid(v.agency_id)));
    }
    if asks("actions") {
        let actions = loaders.actions.load_many(ids.iter().copied()).await.gql()?;
        agencies.extend(actions.values().flatten().map(|a| AgencyId::from_uuid(a.owner_agency_id)));
    }
    if asks("raisingAgency") || asks("receivingAgency") || !agencies.is_empty() {
        agencies.extend(nodes.iter().flat_map(|c| [c.raising_agency_id, c.receiving_agency_id]));
        loaders.agency.load_many(agencies).await.gql()?;
    }
    // The cases the page links to (a step-down's follow-up, the case one
    // follows), in one statement.
    if asks("followsUp") || selection.field("stepDown").field("followUpCase").exists() {
        let linked: Vec<CaseId> = nodes
            .iter()
            .flat_map(|c| [c.follows, c.step_down.as_ref().and_then(|s| s.follow_up)])
            .flatten()
            .collect();
        if !linked.is_empty() {
            loaders.case.load_many(linked).await.gql()?;
        }
    }
    let permissions = asks("viewerCan") || asks("viewerPermissions");
    let viewer = match ctx.data::<Viewer>()? {
        Viewer::Actor(actor) => Some(actor),
        Viewer::Anonymous => None,
    };
    let for_permissions =
        permissions && viewer.is_some_and(|a| nodes.iter().any(|c| may_participate(c, a)));
    if asks("participants") || for_permissions {
        let joined = loaders.participants.load_many(ids.iter().copied()).await.gql()?;
        if selection.field("participants").field("agency").exists() {
            let named = joined.values().flatten().map(|p| p.agency_id);
            loaders.agency.load_many(named).await.gql()?;
        }
    }
    if asks("partnership") {
        let partnerships: Vec<_> = nodes.iter().map(|c| c.partnership_id).collect();
        loaders.partnership.load_many(partnerships.iter().copied()).await.gql()?;
        if selection.field("partnership").field("agencies").exists() {
            loaders.agencies_of.load_many(partnerships).await.gql()?;
        }
    }
    Ok(())
}

/// The fields of a selection that `@skip`/`@include` leave in.
fn selected<'a>(
    selection: &async_graphql::Lookahead<'a>,
) -> Result<Vec<async_graphql::SelectionField<'a>>> {
    let mut out = Vec::new();
    for field in selection.selection_fields().iter().flat_map(|f| f.selection_set()) {
        let mut keep = true;
        for d in field.directives()? {
            let flag = d.arguments.iter().find(|(n, _)| n.node == "if").map(|(_, v)| &v.node);
            let flag = matches!(flag, Some(async_graphql::Value::Boolean(true)));
            match d.name.node.as_str() {
                "skip" if flag => keep = false,
                "include" if !flag => keep = false,
                _ => {}
            }
        }
        if keep {
            out.push(field);
        }
    }
    Ok(out)
}

// Cursors are opaque to callers: the keyset (raising time in microseconds,
// id) in hex, so they carry no readable data and no free text.
pub(crate) fn hex(raw: &str) -> String {
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(cursor: &str) -> Option<String> {
    if !cursor.len().is_multiple_of(2) || cursor.len() > 200 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

fn encode_keyset(at: chrono::DateTime<Utc>, id: impl std::fmt::Display) -> String {
    hex(&format!("{}|{id}", at.timestamp_micros()))
}

fn decode_keyset(cursor: &str) -> Option<(chrono::DateTime<Utc>, uuid::Uuid)> {
    let raw = unhex(cursor)?;
    let (micros, id) = raw.split_once('|')?;
    Some((
        chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        uuid::Uuid::try_parse(id).ok()?,
    ))
}

fn encode_seq(seq: i32) -> String {
    hex(&format!("seq|{seq}"))
}

fn decode_seq(cursor: &str) -> Option<i32> {
    unhex(cursor)?.strip_prefix("seq|")?.parse().ok()
}

// A cursor of `UPDATED_AT` carries a prefix, so neither order's cursor
// decodes as the other's (`RAISED_AT` keeps the cursors it always had).
const UPDATED_PREFIX: &str = "updated|";

fn encode_cursor(c: &cases::Case, order: cases::CaseOrder) -> String {
    match order {
        cases::CaseOrder::RaisedAt => encode_keyset(c.raised_at, c.id),
        cases::CaseOrder::UpdatedAt => {
            hex(&format!("{UPDATED_PREFIX}{}|{}", c.updated_at.timestamp_micros(), c.id))
        }
    }
}

fn decode_cursor(cursor: &str, order: cases::CaseOrder) -> Option<cases::After> {
    let (at, id) = match order {
        cases::CaseOrder::RaisedAt => decode_keyset(cursor)?,
        cases::CaseOrder::UpdatedAt => {
            let raw = unhex(cursor)?;
            let (micros, id) = raw.strip_prefix(UPDATED_PREFIX)?.split_once('|')?;
            (
                chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?,
                uuid::Uuid::try_parse(id).ok()?,
            )
        }
    };
    Some(cases::After { at, id: CaseId::from_uuid(id) })
}

/// One event of a case's audit trail.
#[derive(SimpleObject, Clone)]
pub struct AuditEvent {
    /// Position in the case's trail, from 1; equals the case version it made.
    pub seq: i32,
    /// When.
    pub at: DateTime,
    /// The token's `sub`.
    pub actor_sub: String,
    /// The actor's role, if a person.
    pub actor_role: Option<String>,
    /// The actor's agency id, if any.
    pub actor_agency_id: Option<ID>,
    /// What was done, e.g. `raise`, `escalate`, `add_record`.
    pub action: String,
    /// The request id of the change.
    pub request_id: Option<String>,
    /// What changed, as JSON.
    pub data: String,
    /// SHA-256 of the previous event and this one; a broken chain shows an
    /// edit or a deletion.
    pub hash: String,
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
        let case = cases::get(db, visibility, id).await.gql()?;
        super::know_versions(ctx, std::slice::from_ref(&case)).await?;
        Ok(Case(case))
    }

    /// The caller's cases, a page at a time: `first` (1 to 100, default 50)
    /// after the cursor `after`, newest raised first (`orderBy: RAISED_AT`)
    /// or least recently changed first (`orderBy: UPDATED_AT`). Scope,
    /// filters, order and paging are applied in the database.
    #[graphql(complexity = "cost::page(first, child_complexity)")]
    async fn cases(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Filters; all optional.", default)] filter: CaseFilter,
        #[graphql(
            desc = "The order of the list; a cursor belongs to the order it was read in.",
            default
        )]
        order_by: CaseOrder,
        #[graphql(desc = "Page size, 1 to 100.", default = 50)] first: i32,
        #[graphql(desc = "The `endCursor` of the previous page, read in the same `orderBy`.")]
        after: Option<String>,
    ) -> Result<CaseConnection> {
        if !(1..=100).contains(&first) {
            return Err(bad_input("first", "between 1 and 100"));
        }
        let order = cases::CaseOrder::from(order_by);
        let after = match after {
            None => None,
            Some(c) => Some(
                decode_cursor(&c, order)
                    .ok_or_else(|| bad_input("after", "not a cursor of this list and order"))?,
            ),
        };
        let visibility = visibility(ctx)?;
        let agency = match &filter.agency_id {
            None => None,
            Some(id) => {
                Some(id.parse().map_err(|_| bad_input("agencyId", "not a valid identifier"))?)
            }
        };
        let child_reference = match &filter.child_reference {
            None => None,
            Some(text) => Some(
                ChildReference::parse(text)
                    .map_err(|e| bad_input("childReference", e.to_string()))?,
            ),
        };
        let f = cases::CaseFilter {
            status: filter.status.map(Into::into),
            stage: filter.stage,
            overdue: filter.overdue,
            agency,
            category: filter.category,
            raised_from: filter.raised_from.map(|t| t.0),
            raised_to: filter.raised_to.map(|t| t.0),
            updated_after: filter.updated_after.map(|t| t.0),
            child_reference,
        };
        let db = ctx.data::<DatabaseConnection>()?;
        let today = crate::service::audit::now().date_naive();
        let limit = u64::try_from(first).unwrap_or(50);
        let (list, has_next_page) =
            cases::page(db, visibility, &f, today, order, after, limit).await.gql()?;
        Ok(CaseConnection {
            nodes: list,
            order,
            has_next_page,
            has_previous_page: after.is_some(),
            count_query: (visibility, f, today),
        })
    }

    /// Up to 100 cases by id, in the order of `ids`, in one lookup: each id
    /// of a case the caller may not see, or of no case, is `null` (the two
    /// cannot be told apart). More than 100 ids, or one that is not an
    /// identifier, is `BAD_USER_INPUT` on `ids`.
    #[graphql(complexity = "cost::list(ids.len().min(MAX_NODES), child_complexity)")]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Identifiers of cases, at most 100; repeats are allowed.")] ids: Vec<ID>,
    ) -> Result<Vec<Option<Case>>> {
        if ids.len() > MAX_NODES {
            return Err(bad_input("ids", format!("at most {MAX_NODES} identifiers")));
        }
        let ids = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                id.parse::<CaseId>()
                    .map_err(|_| bad_input("ids", format!("ids[{i}] is not a valid identifier")))
            })
            .collect::<Result<Vec<_>>>()?;
        let db = ctx.data::<DatabaseConnection>()?;
        let found = cases::get_many(db, visibility(ctx)?, &ids).await.gql()?;
        prefetch(ctx, &ctx.look_ahead(), &found).await?;
        let by_id: std::collections::HashMap<CaseId, cases::Case> =
            found.into_iter().map(|c| (c.id, c)).collect();
        Ok(ids.iter().map(|id| by_id.get(id).cloned().map(Case)).collect())
    }

    /// A case's audit trail, oldest first, a page at a time: every change
    /// with who, when, which agency, the request id and what changed. For the
    /// roles the protocol allows to read it.
    #[graphql(complexity = "cost::page(first, child_complexity)")]
    async fn audit_trail(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Identifier of the case.")] case_id: ID,
        #[graphql(desc = "Page size, 1 to 100.", default = 50)] first: i32,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<AuditEventConnection> {
        let id: CaseId =
            case_id.parse().map_err(|_| bad_input("caseId", "not a valid identifier"))?;
        let limit = page_size(first)?;
        let after = match after {
            None => None,
            Some(c) => Some(
                decode_seq(&c).ok_or_else(|| bad_input("after", "not a cursor of this list"))?,
            ),
        };
        let (db, actor, _) = reader(ctx)?;
        let protocols = ctx.data::<Arc<crate::service::protocols::Library>>()?;
        let (events, has_next_page) =
            crate::service::audit::trail(db, protocols, actor, id, after, limit).await.gql()?;
        // The events' data holds the outcome and learning of a closed case.
        log_read(ctx, id, FreeText::AuditTrail).await?;
        let nodes = events
            .into_iter()
            .map(|e| AuditEvent {
                seq: e.seq,
                at: e.at.into(),
                actor_sub: e.actor_sub,
                actor_role: e.actor_role,
                actor_agency_id: e.actor_agency_id.map(|a| ID(a.to_string())),
                action: e.action,
                request_id: e.request_id,
                data: e.data,
                hash: e.hash,
            })
            .collect();
        Ok(AuditEventConnection {
            case: id,
            nodes,
            has_next_page,
            has_previous_page: after.is_some(),
        })
    }
}

/// The most ids `nodes` takes.
const MAX_NODES: usize = cost::MAX_PAGE;

/// Which cases the caller may see.
fn visibility(ctx: &Context<'_>) -> Result<CaseVisibility> {
    Ok(match ctx.data::<Viewer>()? {
        Viewer::Anonymous => CaseVisibility::None,
        Viewer::Actor(actor) => actor.case_visibility(),
    })
}

fn page_size(first: i32) -> Result<u64> {
    if !(1..=100).contains(&first) {
        return Err(bad_input("first", "between 1 and 100"));
    }
    Ok(u64::try_from(first).unwrap_or(50))
}

/// A page of a case's records.
pub struct RecordConnection {
    case: CaseId,
    nodes: Vec<records::Record>,
    has_next_page: bool,
    has_previous_page: bool,
}

/// A page of a case's records (Relay-style connection).
#[Object]
impl RecordConnection {
    /// The records of this page with their cursors.
    async fn edges(&self) -> Vec<RecordEdge> {
        self.nodes
            .iter()
            .map(|r| RecordEdge { cursor: encode_keyset(r.created_at, r.id), node: r.clone() })
            .collect()
    }
    /// The records of this page.
    async fn nodes(&self) -> Vec<Record> {
        self.nodes.iter().cloned().map(Record).collect()
    }
    /// Where this page stands in the list.
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            start_cursor: self.nodes.first().map(|r| encode_keyset(r.created_at, r.id)),
            end_cursor: self.nodes.last().map(|r| encode_keyset(r.created_at, r.id)),
        }
    }
    /// How many records the case has in all.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<u64> {
        let loaders = ctx.data::<Loaders>()?;
        Ok(loaders.record_count.load_one(self.case).await.gql()?.unwrap_or(0))
    }
}

/// A record in a page, with its cursor.
pub struct RecordEdge {
    cursor: String,
    node: records::Record,
}

/// A record in a page, with its cursor.
#[Object]
impl RecordEdge {
    /// Opaque cursor: pass it as `after` for the records that follow.
    async fn cursor(&self) -> &str {
        &self.cursor
    }
    /// The record.
    async fn node(&self) -> Record {
        Record(self.node.clone())
    }
}

/// A page of a case's audit trail.
pub struct AuditEventConnection {
    case: CaseId,
    nodes: Vec<AuditEvent>,
    has_next_page: bool,
    has_previous_page: bool,
}

/// A page of a case's audit trail (Relay-style connection).
#[Object]
impl AuditEventConnection {
    /// The events of this page with their cursors.
    async fn edges(&self) -> Vec<AuditEventEdge> {
        self.nodes
            .iter()
            .map(|e| AuditEventEdge { cursor: encode_seq(e.seq), node: e.clone() })
            .collect()
    }
    /// The events of this page.
    async fn nodes(&self) -> Vec<AuditEvent> {
        self.nodes.clone()
    }
    /// Where this page stands in the list.
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            start_cursor: self.nodes.first().map(|e| encode_seq(e.seq)),
            end_cursor: self.nodes.last().map(|e| encode_seq(e.seq)),
        }
    }
    /// How many events the trail has in all.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<u64> {
        let db = ctx.data::<DatabaseConnection>()?;
        crate::service::audit::trail_count(db, self.case).await.gql()
    }
}

/// An audit event in a page, with its cursor.
pub struct AuditEventEdge {
    cursor: String,
    node: AuditEvent,
}

/// An audit event in a page, with its cursor.
#[Object]
impl AuditEventEdge {
    /// Opaque cursor: pass it as `after` for the events that follow.
    async fn cursor(&self) -> &str {
        &self.cursor
    }
    /// The event.
    async fn node(&self) -> AuditEvent {
        self.node.clone()
    }
}
