//! What is written at a stage: records, agencies' views, agreed actions.

use crate::graphql::scalars::{Date, DateTime};
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};

use super::case::Case;
use super::directory::{Agency, load_agency};
use super::error::{GqlResult, bad_input};
use super::loaders::Loaders;
use super::workflow::{CasePayload, case_id, run_change};
use crate::domain::ids::AgencyId;
use crate::domain::protocol::RecordKind as DomainRecordKind;
use crate::graphql::cost;
use crate::service::change::Keyed;
use crate::service::{family_told, records};

/// What kind of written record.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::protocol::RecordKind")]
pub enum RecordKind {
    /// A written record of a discussion.
    Discussion,
    /// The record of a meeting.
    Meeting,
    /// A letter or written request.
    Letter,
    /// An analysis, e.g. of the risk to the child.
    Analysis,
    /// A challenge form (Rotherham).
    Form,
    /// A response to a form or letter.
    Response,
    /// The Resolution of Professional Differences Report.
    Report,
    /// A notification to someone who must be told.
    Notification,
}

/// A written record of a discussion, meeting, letter or analysis at a stage.
/// Both agencies keep it and may read it; it is never edited, only followed
/// by a correction.
pub struct Record(pub records::Record);

/// A written record of a discussion, meeting, letter or analysis at a stage.
/// Both agencies keep it and may read it; it is never edited, only followed
/// by a correction.
#[Object]
impl Record {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Key of the stage it was written at.
    async fn stage(&self) -> &str {
        &self.0.stage
    }
    /// What kind of record.
    async fn kind(&self) -> Option<RecordKind> {
        record_kind(&self.0.kind).map(RecordKind::from)
    }
    /// The facts, as the author recorded them.
    #[graphql(complexity = cost::FREE_TEXT)]
    async fn facts(&self) -> &str {
        &self.0.facts
    }
    /// Opinions, kept apart from the facts.
    #[graphql(complexity = cost::FREE_TEXT)]
    async fn opinions(&self) -> &str {
        &self.0.opinions
    }
    /// Who took part.
    async fn attendees(&self) -> &[String] {
        &self.0.attendees
    }
    /// Identifier of the record this one corrects, if any.
    async fn corrects(&self) -> Option<ID> {
        self.0.corrects.map(|c| ID(c.to_string()))
    }
    /// The author's agency.
    async fn author_agency(&self, ctx: &Context<'_>) -> Result<Option<Agency>> {
        let Some(id) = self.0.author_agency_id else { return Ok(None) };
        let loaders = ctx.data::<Loaders>()?;
        Ok(loaders.agency.load_one(AgencyId::from_uuid(id)).await.gql()?.map(Agency))
    }
    /// When it was written.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

fn record_kind(s: &str) -> Option<DomainRecordKind> {
    [
        DomainRecordKind::Discussion,
        DomainRecordKind::Meeting,
        DomainRecordKind::Letter,
        DomainRecordKind::Analysis,
        DomainRecordKind::Form,
        DomainRecordKind::Response,
        DomainRecordKind::Report,
        DomainRecordKind::Notification,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
}

/// One agency's position on the dispute at a stage (a later view of the same
/// agency supersedes it; both are kept).
pub struct AgencyView(pub records::View);

/// One agency's position on the dispute at a stage (a later view of the same
/// agency supersedes it; both are kept).
#[Object]
impl AgencyView {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The agency whose view it is.
    async fn agency(&self, ctx: &Context<'_>) -> Result<Agency> {
        load_agency(ctx, AgencyId::from_uuid(self.0.agency_id)).await
    }
    /// Key of the stage.
    async fn stage(&self) -> &str {
        &self.0.stage
    }
    /// The view.
    #[graphql(complexity = cost::FREE_TEXT)]
    async fn view(&self) -> &str {
        &self.0.view
    }
    /// When it was recorded.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

/// An action agreed at a stage, with its owner and due date.
pub struct AgreedAction(pub records::AgreedAction);

/// An action agreed at a stage, with its owner and due date.
#[Object]
impl AgreedAction {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Key of the stage it was agreed at.
    async fn stage(&self) -> &str {
        &self.0.stage
    }
    /// What is to be done.
    #[graphql(complexity = cost::FREE_TEXT)]
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// The agency that owns it.
    async fn owner(&self, ctx: &Context<'_>) -> Result<Agency> {
        load_agency(ctx, AgencyId::from_uuid(self.0.owner_agency_id)).await
    }
    /// By when.
    async fn due_on(&self) -> Date {
        self.0.due_on.into()
    }
    /// When it was agreed.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When the owner agency recorded it done (`completeAction`); null
    /// while it is open.
    async fn completed_at(&self) -> Option<DateTime> {
        self.0.completed_at.map(Into::into)
    }
    /// Still open after its due day (in the United Kingdom), on the
    /// server's clock. Its reminders are `ACTION_DUE_SOON` and
    /// `ACTION_OVERDUE`.
    async fn overdue(&self) -> bool {
        self.0.completed_at.is_none()
            && crate::domain::deadline::due_at(self.0.due_on) < crate::service::audit::now()
    }
}

/// Write a record at the case's current stage.
#[derive(InputObject)]
pub struct AddRecordInput {
    /// The case.
    pub case_id: ID,
    /// Optional idempotency key (1 to 128 characters, unique per caller): a
    /// retry with the same key and input returns the first result without
    /// a second change; the same key with another input is `CONFLICT`.
    pub idempotency_key: Option<String>,
    /// The version you last saw; a stale one is `CONFLICT`.
    pub expected_version: Option<i32>,
    /// What kind of record.
    pub kind: RecordKind,
    /// The facts.
    pub facts: String,
    /// Opinions, kept apart from the facts (may be empty).
    #[graphql(default)]
    pub opinions: String,
    /// Who took part (roles and agencies; names only if the author must).
    #[graphql(default)]
    pub attendees: Vec<String>,
    /// The record this one corrects (records are never edited).
    pub corrects: Option<ID>,
}

/// Record your agency's view of the dispute at the current stage.
#[derive(InputObject)]
pub struct RecordAgencyViewInput {
    /// The case.
    pub case_id: ID,
    /// Optional idempotency key (1 to 128 characters, unique per caller): a
    /// retry with the same key and input returns the first result without
    /// a second change; the same key with another input is `CONFLICT`.
    pub idempotency_key: Option<String>,
    /// The version you last saw; a stale one is `CONFLICT`.
    pub expected_version: Option<i32>,
    /// Your agency's position.
    pub view: String,
}

/// Agree an action with an owner and a due date.
#[derive(InputObject)]
pub struct AgreeActionInput {
    /// The case.
    pub case_id: ID,
    /// Optional idempotency key (1 to 128 characters, unique per caller): a
    /// retry with the same key and input returns the first result without
    /// a second change; the same key with another input is `CONFLICT`.
    pub idempotency_key: Option<String>,
    /// The version you last saw; a stale one is `CONFLICT`.
    pub expected_version: Option<i32>,
    /// What is to be done.
    pub description: String,
    /// The agency that owns the action: the raising or the receiving agency
    /// of the case (another is `BAD_USER_INPUT`).
    pub owner_agency_id: ID,
    /// By when (not in the past).
    pub due_on: Date,
}

/// Record an agreed action done.
#[derive(InputObject)]
pub struct CompleteActionInput {
    /// The case the action was agreed on.
    pub case_id: ID,
    /// Optional idempotency key (1 to 128 characters, unique per caller): a
    /// retry with the same key and input returns the first result without
    /// a second change; the same key with another input is `CONFLICT`.
    pub idempotency_key: Option<String>,
    /// The version you last saw; a stale one is `CONFLICT`.
    pub expected_version: Option<i32>,
    /// The action (`AgreedAction.id`); one not agreed on this case is
    /// `NOT_FOUND`.
    pub action_id: ID,
}

/// Record the day the family was told of the case, where the protocol has
/// the rule (Rotherham's challenge).
#[derive(InputObject)]
pub struct RecordFamilyToldInput {
    /// The case.
    pub case_id: ID,
    /// Optional idempotency key (1 to 128 characters, unique per caller): a
    /// retry with the same key and input returns the first result without
    /// a second change; the same key with another input is `CONFLICT`.
    pub idempotency_key: Option<String>,
    /// The version you last saw; a stale one is `CONFLICT`.
    pub expected_version: Option<i32>,
    /// The day the family was told: not before the case was raised, not
    /// after today.
    pub told_on: Date,
}

/// The result of `addRecord`.
#[derive(SimpleObject)]
pub struct AddRecordPayload {
    /// The record written.
    pub record: Record,
}

/// The result of `recordAgencyView`.
#[derive(SimpleObject)]
pub struct RecordAgencyViewPayload {
    /// The view recorded.
    pub view: AgencyView,
}

/// The result of `agreeAction`.
#[derive(SimpleObject)]
pub struct AgreeActionPayload {
    /// The action agreed.
    pub action: AgreedAction,
}

/// The result of `completeAction`.
#[derive(SimpleObject)]
pub struct CompleteActionPayload {
    /// The action, completed.
    pub action: AgreedAction,
}

fn non_empty(field: &'static str, text: &str) -> Result<()> {
    if text.trim().is_empty() { Err(bad_input(field, "must not be empty")) } else { Ok(()) }
}

impl TryFrom<AddRecordInput> for Keyed<records::AddRecordInput> {
    type Error = async_graphql::Error;

    fn try_from(input: AddRecordInput) -> Result<Self> {
        non_empty("facts", &input.facts)?;
        let corrects = match &input.corrects {
            None => None,
            Some(id) => Some(
                uuid::Uuid::try_parse(id.as_str())
                    .map_err(|_| bad_input("corrects", "not a valid identifier"))?,
            ),
        };
        let change = records::AddRecordInput {
            case: case_id(&input.case_id, "caseId")?,
            expected_version: input.expected_version,
            kind: input.kind.into(),
            facts: input.facts,
            opinions: input.opinions,
            attendees: input.attendees,
            corrects,
        };
        Ok(Keyed { key: input.idempotency_key, change })
    }
}

impl TryFrom<RecordAgencyViewInput> for Keyed<records::RecordViewInput> {
    type Error = async_graphql::Error;

    fn try_from(input: RecordAgencyViewInput) -> Result<Self> {
        non_empty("view", &input.view)?;
        let change = records::RecordViewInput {
            case: case_id(&input.case_id, "caseId")?,
            expected_version: input.expected_version,
            view: input.view,
        };
        Ok(Keyed { key: input.idempotency_key, change })
    }
}

impl TryFrom<AgreeActionInput> for Keyed<records::AgreeActionInput> {
    type Error = async_graphql::Error;

    fn try_from(input: AgreeActionInput) -> Result<Self> {
        non_empty("description", &input.description)?;
        let owner: AgencyId = input
            .owner_agency_id
            .parse()
            .map_err(|_| bad_input("ownerAgencyId", "not a valid identifier"))?;
        let change = records::AgreeActionInput {
            case: case_id(&input.case_id, "caseId")?,
            expected_version: input.expected_version,
            description: input.description,
            owner,
            due_on: input.due_on.0,
        };
        Ok(Keyed { key: input.idempotency_key, change })
    }
}

impl TryFrom<CompleteActionInput> for Keyed<records::CompleteActionInput> {
    type Error = async_graphql::Error;

    fn try_from(input: CompleteActionInput) -> Result<Self> {
        let action = input
            .action_id
            .parse::<uuid::Uuid>()
            .map_err(|_| bad_input("actionId", "not a valid identifier"))?;
        let change = records::CompleteActionInput {
            case: case_id(&input.case_id, "caseId")?,
            expected_version: input.expected_version,
            action,
        };
        Ok(Keyed { key: input.idempotency_key, change })
    }
}

impl TryFrom<RecordFamilyToldInput> for Keyed<family_told::RecordFamilyToldInput> {
    type Error = async_graphql::Error;

    fn try_from(input: RecordFamilyToldInput) -> Result<Self> {
        let change = family_told::RecordFamilyToldInput {
            case: case_id(&input.case_id, "caseId")?,
            expected_version: input.expected_version,
            told_on: input.told_on.0,
        };
        Ok(Keyed { key: input.idempotency_key, change })
    }
}

/// Record, view and action mutations.
#[derive(Default)]
pub struct RecordsMutation;

#[Object]
impl RecordsMutation {
    /// Write a record (discussion, meeting, letter, analysis…) at the case's
    /// current stage. Records are never edited: to correct one, add a record
    /// whose `corrects` names it.
    async fn add_record(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The record.")] input: AddRecordInput,
    ) -> Result<AddRecordPayload> {
        let written = run_change::<records::AddRecordInput>(ctx, input).await?;
        Ok(AddRecordPayload { record: Record(written) })
    }

    /// Record your agency's view of the dispute at the case's current stage.
    async fn record_agency_view(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The view.")] input: RecordAgencyViewInput,
    ) -> Result<RecordAgencyViewPayload> {
        let written = run_change::<records::RecordViewInput>(ctx, input).await?;
        Ok(RecordAgencyViewPayload { view: AgencyView(written) })
    }

    /// Agree an action with an owner agency and a due date.
    async fn agree_action(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The action.")] input: AgreeActionInput,
    ) -> Result<AgreeActionPayload> {
        let written = run_change::<records::AgreeActionInput>(ctx, input).await?;
        Ok(AgreeActionPayload { action: AgreedAction(written) })
    }

    /// Record an agreed action done. By the agency that owns it, in a role
    /// that may agree actions at the case's current stage, while the case
    /// is open: the other party or the board chair get `FORBIDDEN` (with
    /// the owner's side in `allowedSides`), a second completion or a closed
    /// case `CONFLICT`, an action not of this case `NOT_FOUND`. Its
    /// reminders still to come are cancelled.
    async fn complete_action(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The action.")] input: CompleteActionInput,
    ) -> Result<CompleteActionPayload> {
        let done = run_change::<records::CompleteActionInput>(ctx, input).await?;
        Ok(CompleteActionPayload { action: AgreedAction(done) })
    }

    /// Record the day the family was told of the case, where the protocol
    /// has the rule (Rotherham's challenge: "the Conference Chair will
    /// ensure that families are aware of any challenge escalations
    /// raised"), by the roles and side the rule names (`viewerCan`
    /// shows it). The case shows the latest day (`Case.familyToldOn`): a
    /// later recording replaces it (a correction, or the family told again
    /// of a later escalation), and the audit trail keeps each with the day
    /// it replaced. `BAD_USER_INPUT` on a route without the rule (`caseId`)
    /// or for a day in the future or before the case was raised (`toldOn`);
    /// `CONFLICT` for the day already shown or a closed case.
    async fn record_family_told(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The day the family was told.")] input: RecordFamilyToldInput,
    ) -> Result<CasePayload> {
        let case = run_change::<family_told::RecordFamilyToldInput>(ctx, input).await?;
        Ok(CasePayload { case: Case(case) })
    }
}
