//! Rotherham's step-down check: `recordStepDown`, `recordStepDownCheck`
//! and what a case shows of them (`Case.stepDown`, `Case.followsUp`).
//! Resolvers parse, call the change frame and map; the rules are
//! `domain::step_down`'s.

use async_graphql::{Context, ID, InputObject, Object, Result};

use super::case::Case;
use super::error::GqlResult;
use super::loaders::Loaders;
use super::workflow::{CasePayload, case_id, run_change, version};
use crate::domain::step_down::{Finding, check_due_on};
use crate::graphql::scalars::{Date, DateTime};
use crate::service::change::Keyed;
use crate::service::{ServiceError, cases, step_down};

/// Record that a child protection conference decided a step-down from the
/// child protection plan to Child in Need planning (Rotherham's challenge).
#[derive(InputObject)]
pub struct RecordStepDownInput {
    /// The case.
    pub case_id: ID,
    /// Optional idempotency key (1 to 128 characters, unique per caller): a
    /// retry with the same key and input returns the first result without
    /// a second change; the same key with another input is `CONFLICT`.
    pub idempotency_key: Option<String>,
    /// The version you last saw; a stale one is `CONFLICT`.
    pub expected_version: Option<i32>,
    /// The day of the conference that decided the step-down: not after
    /// today (it may be before the case was raised). The check is due six
    /// weeks later (`StepDown.checkDueOn`).
    pub conference_on: Date,
}

/// Record the Conference Chair's check of a case's step-down: whether a
/// multi-agency Child in Need meeting took place and a Child in Need plan
/// is in place.
#[derive(InputObject)]
pub struct RecordStepDownCheckInput {
    /// The case whose step-down is checked.
    pub case_id: ID,
    /// Optional idempotency key (1 to 128 characters, unique per caller): a
    /// retry with the same key and input returns the first result without
    /// a second change (and raises no second case); the same key with
    /// another input is `CONFLICT`.
    pub idempotency_key: Option<String>,
    /// The version you last saw; a stale one is `CONFLICT`.
    pub expected_version: Option<i32>,
    /// An appropriate multi-agency CiN meeting has taken place.
    pub cin_meeting_held: bool,
    /// A relevant CiN plan is in place.
    pub cin_plan_in_place: bool,
}

impl TryFrom<RecordStepDownInput> for Keyed<step_down::RecordStepDownInput> {
    type Error = async_graphql::Error;

    fn try_from(input: RecordStepDownInput) -> Result<Self> {
        let change = step_down::RecordStepDownInput {
            case: case_id(&input.case_id, "caseId")?,
            expected_version: version(input.expected_version)?,
            conference_on: input.conference_on.0,
        };
        Ok(Keyed { key: input.idempotency_key, change })
    }
}

impl TryFrom<RecordStepDownCheckInput> for Keyed<step_down::RecordStepDownCheckInput> {
    type Error = async_graphql::Error;

    fn try_from(input: RecordStepDownCheckInput) -> Result<Self> {
        let change = step_down::RecordStepDownCheckInput {
            case: case_id(&input.case_id, "caseId")?,
            expected_version: version(input.expected_version)?,
            finding: Finding {
                cin_meeting_held: input.cin_meeting_held,
                cin_plan_in_place: input.cin_plan_in_place,
            },
        };
        Ok(Keyed { key: input.idempotency_key, change })
    }
}

/// The step-down mutations.
#[derive(Default)]
pub struct StepDownMutation;

#[Object]
impl StepDownMutation {
    /// Record that a child protection conference decided the plan is no
    /// longer required and stepped the child down to Child in Need planning,
    /// where the protocol has the rule (Rotherham's challenge: the
    /// Conference Chair "will, six weeks post conference, monitor the
    /// child's case file"), by the roles and side the rule names
    /// (`viewerCan.recordStepDown`), on an open or a closed case of the
    /// rule's route. The check falls due six weeks after the conference
    /// (`Case.stepDown.checkDueOn`; a `STEP_DOWN_CHECK_DUE` event at the
    /// start of that day). Until the check a new day replaces the one shown (a
    /// correction). `BAD_USER_INPUT` on a route without the rule (`caseId`)
    /// or for a day in the future (`conferenceOn`); `CONFLICT` for the day
    /// already shown or a step-down already checked.
    async fn record_step_down(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The conference's step-down.")] input: RecordStepDownInput,
    ) -> Result<CasePayload> {
        let case = run_change::<step_down::RecordStepDownInput>(ctx, input).await?;
        Ok(CasePayload { case: Case(case) })
    }

    /// Record the Conference Chair's check of the case's step-down: whether
    /// a multi-agency CiN meeting took place and a CiN plan is in place,
    /// by the roles and side the rule names
    /// (`viewerCan.recordStepDownCheck`), once. When either is missing the
    /// step-down is not evidenced and the challenge starts again: in the
    /// same change a new case is raised at the rule's stage (Rotherham:
    /// stage 1) between the same two agencies, about the same child and
    /// category, following this one (`Case.stepDown.followUpCase`, and the
    /// new case's `followsUp`), with its own `CASE_RAISED` event. A check
    /// that finds both may come early; one that finds either missing only
    /// from the due day (`checkDueOn`), since until then the meeting may
    /// still be held. `BAD_USER_INPUT` on a route without the rule
    /// (`caseId`); `CONFLICT` with no step-down recorded, for a second
    /// check, or for a finding of something missing before the due day.
    async fn record_step_down_check(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the chair found.")] input: RecordStepDownCheckInput,
    ) -> Result<CasePayload> {
        let case = run_change::<step_down::RecordStepDownCheckInput>(ctx, input).await?;
        Ok(CasePayload { case: Case(case) })
    }
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct StepDown {
    pub(crate) step_down: cases::StepDown,
    pub(crate) check_due_on: chrono::NaiveDate,
}

impl StepDown {
    /// The step-down `c` shows, with its due day from its protocol's rule.
    pub(crate) fn of(ctx: &Context<'_>, c: &cases::Case) -> Result<Option<Self>> {
        let Some(step_down) = c.step_down.clone() else { return Ok(None) };
        let catalog = &super::catalog(ctx)?;
        let rule = catalog
            .get(&c.protocol_id, u32::try_from(c.protocol_version).unwrap_or(0))
            .and_then(|p| p.rules().step_down_check())
            .ok_or_else(|| ServiceError::UnknownProtocol(c.protocol_id.clone()))
            .gql()?;
        let check_due_on = check_due_on(rule, step_down.conference_on);
        Ok(Some(Self { step_down, check_due_on }))
    }
}

/// A child protection conference's step-down from the plan to Child in
/// Need planning, recorded on a case (Rotherham's challenge), and the
/// Conference Chair's check six weeks later that a multi-agency CiN
/// meeting took place and a CiN plan is in place.
#[Object]
impl StepDown {
    /// The day of the conference that decided the step-down.
    async fn conference_on(&self) -> Date {
        Date(self.step_down.conference_on)
    }

    /// The day the check is due: six weeks (the protocol's calendar days)
    /// after the conference. A `STEP_DOWN_CHECK_DUE` event announces it at
    /// the start of the day in the United Kingdom, unless the check was
    /// recorded before.
    async fn check_due_on(&self) -> Date {
        Date(self.check_due_on)
    }

    /// When the chair recorded the check; null until then.
    async fn checked_at(&self) -> Option<DateTime> {
        self.step_down.check.map(|c| DateTime(c.at))
    }

    /// Whether the check found a multi-agency CiN meeting held; null until
    /// checked.
    async fn cin_meeting_held(&self) -> Option<bool> {
        self.step_down.check.map(|c| c.cin_meeting_held)
    }

    /// Whether the check found a CiN plan in place; null until checked.
    async fn cin_plan_in_place(&self) -> Option<bool> {
        self.step_down.check.map(|c| c.cin_plan_in_place)
    }

    /// Whether the step-down is evidenced (both held); null until checked.
    async fn evidenced(&self) -> Option<bool> {
        self.step_down.check.map(|c| c.cin_meeting_held && c.cin_plan_in_place)
    }

    /// The case the check raised when the step-down was not evidenced (the
    /// challenge started again, between the same agencies); null otherwise.
    /// Batched across a list: one statement for a page of cases.
    async fn follow_up_case(&self, ctx: &Context<'_>) -> Result<Option<Case>> {
        linked(ctx, self.step_down.follow_up).await
    }
}

/// The linked case `id`, if any and if the caller may see it.
pub(crate) async fn linked(
    ctx: &Context<'_>,
    id: Option<crate::domain::ids::CaseId>,
) -> Result<Option<Case>> {
    let Some(id) = id else { return Ok(None) };
    let loaders = ctx.data::<Loaders>()?;
    let Some(case) = loaders.case.load_one(id).await.gql()? else { return Ok(None) };
    super::know_versions(ctx, std::slice::from_ref(&case)).await?;
    Ok(Some(Case(case)))
}
