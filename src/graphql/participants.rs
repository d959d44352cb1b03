//! Agencies beyond the two parties: `joinCase` and `leaveCase` (the rule is
//! `domain::access::may_join` and `may_leave`; each a change through the
//! frame, audited, with its event). `Case.participants` is in `case`, and
//! `Stage.participants` in `protocols`.

use async_graphql::{Context, ID, InputObject, Object, Result};

use super::case::Case;
use super::error::bad_input;
use super::workflow::{CasePayload, case_id, run_change, version};
use crate::domain::ids::AgencyId;
use crate::service::change::Keyed;
use crate::service::participants;

/// Bring an agency beyond the two parties into a case, at a stage that
/// names its kind (`Stage.participants`).
#[derive(InputObject)]
pub struct JoinCaseInput {
    /// The case.
    pub case_id: ID,
    /// The agency brought in: of the case's partnership, of a kind the
    /// case's stage names, neither party.
    pub agency_id: ID,
    /// Optional idempotency key (1 to 128 characters, unique per caller): a
    /// retry with the same key and input returns the first result without
    /// a second change; the same key with another input is `CONFLICT`.
    pub idempotency_key: Option<String>,
    /// The version you last saw; a stale one is `CONFLICT`.
    pub expected_version: Option<i32>,
}

/// End an agency's part in a case.
#[derive(InputObject)]
pub struct LeaveCaseInput {
    /// The case.
    pub case_id: ID,
    /// The agency that leaves: one taking part now.
    pub agency_id: ID,
    /// Optional idempotency key (1 to 128 characters, unique per caller): a
    /// retry with the same key and input returns the first result without
    /// a second change; the same key with another input is `CONFLICT`.
    pub idempotency_key: Option<String>,
    /// The version you last saw; a stale one is `CONFLICT`.
    pub expected_version: Option<i32>,
}

fn agency_id(id: &ID) -> Result<AgencyId> {
    id.parse().map_err(|_| bad_input("agencyId", "not a valid identifier"))
}

impl TryFrom<JoinCaseInput> for Keyed<participants::JoinInput> {
    type Error = async_graphql::Error;

    fn try_from(input: JoinCaseInput) -> Result<Self> {
        let change = participants::JoinInput {
            case: case_id(&input.case_id, "caseId")?,
            expected_version: version(input.expected_version)?,
            agency: agency_id(&input.agency_id)?,
        };
        Ok(Keyed { key: input.idempotency_key, change })
    }
}

impl TryFrom<LeaveCaseInput> for Keyed<participants::LeaveInput> {
    type Error = async_graphql::Error;

    fn try_from(input: LeaveCaseInput) -> Result<Self> {
        let change = participants::LeaveInput {
            case: case_id(&input.case_id, "caseId")?,
            expected_version: version(input.expected_version)?,
            agency: agency_id(&input.agency_id)?,
        };
        Ok(Keyed { key: input.idempotency_key, change })
    }
}

/// The participant mutations.
#[derive(Default)]
pub struct ParticipantsMutation;

#[Object]
impl ParticipantsMutation {
    /// Bring an agency beyond the two parties into the case (seed 004's
    /// stage 4: the local Child Protection Manager of children's social
    /// care), by a person of either party whose role the stage's
    /// participant names in `addedBy`, while the case is open and at that
    /// stage. From then its people and clients see the case, and its
    /// people act as the stage says (`Stage.participants.may`), until it
    /// leaves. `BAD_USER_INPUT` when the stage names no participant
    /// (`caseId`), or the agency is of another partnership, a party or of
    /// a kind the stage does not name (`agencyId`); `FORBIDDEN` for a
    /// role or agency that may not bring it in; `CONFLICT` when it takes
    /// part already or the case is closed. Audited (`PARTICIPANT_JOINED`).
    async fn join_case(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The case and the agency.")] input: JoinCaseInput,
    ) -> Result<CasePayload> {
        let case = run_change::<participants::JoinInput>(ctx, input).await?;
        Ok(CasePayload { case: Case(case) })
    }

    /// End an agency's part in the case: by its own roles of the rule it
    /// joined under, or by the roles that bring it in, of either party;
    /// open or closed. From then it sees the case no more (`NOT_FOUND`).
    /// `BAD_USER_INPUT` (`agencyId`) when it does not take part. Audited
    /// (`PARTICIPANT_LEFT`).
    async fn leave_case(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The case and the agency.")] input: LeaveCaseInput,
    ) -> Result<CasePayload> {
        let case = run_change::<participants::LeaveInput>(ctx, input).await?;
        Ok(CasePayload { case: Case(case) })
    }
}
