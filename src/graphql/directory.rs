//! Partnerships and agencies.

use async_graphql::{Context, ID, Object, Result};
use sea_orm::DatabaseConnection;

use super::error::{GqlResult, bad_input};
use super::loaders::Loaders;
use super::scalars::DateTime;
use super::workflow::actor;
use crate::domain::actor::Viewer;
use crate::domain::agency::AgencyKind as DomainAgencyKind;
use crate::domain::calendar::Nation as DomainNation;
use crate::domain::ids::{AgencyId, PartnershipId};
use crate::service::{ServiceError, directory};

/// The sector an agency belongs to.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::agency::AgencyKind")]
pub enum AgencyKind {
    /// A police force or one of its units.
    Police,
    /// An NHS body: health board, trust, integrated care board, GP practice.
    Health,
    /// Children's social care of a local authority.
    ChildrensSocialCare,
    /// Schools, colleges and education services.
    Education,
    /// The probation service.
    Probation,
    /// Housing providers.
    Housing,
    /// Voluntary and community organisations.
    Voluntary,
    /// Anything else.
    Other,
}

/// The nation whose bank holidays a partnership's working days skip: GOV.UK's
/// three lists of bank holidays.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::calendar::Nation")]
pub enum Nation {
    /// England or Wales, which share one list of bank holidays (calendar
    /// `england-and-wales`).
    EnglandAndWales,
    /// Scotland: 2 January and St Andrew's Day, Good Friday but no Easter
    /// Monday, the summer bank holiday on the first Monday of August
    /// (calendar `scotland`).
    Scotland,
    /// Northern Ireland: St Patrick's Day and the Battle of the Boyne
    /// besides England and Wales's holidays (calendar `northern-ireland`).
    NorthernIreland,
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct Partnership(pub directory::Partnership);

/// A safeguarding children partnership (board). It adopts one protocol for
/// resolving professional differences, and its agencies act under it.
#[Object]
impl Partnership {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Stable short code, e.g. `western-bay`; tokens carry it in their
    /// `partnership` claim.
    async fn code(&self) -> &str {
        &self.0.code
    }

    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The version of its protocol new cases take, where the partnership has
    /// pinned one (`adoptProtocolVersion`); null: the protocol's newest.
    /// Open cases keep the version they were raised under.
    async fn adopted_protocol_version(&self) -> Option<i32> {
        self.0.protocol_version
    }
    /// Identifier of the protocol the partnership has adopted, e.g. `pan-sussex`.
    async fn protocol_id(&self) -> &str {
        &self.0.protocol_id
    }

    /// Identifier of the working-day calendar its deadlines use: its
    /// nation's, `england-and-wales`, `scotland` or `northern-ireland`
    /// (GOV.UK's names of the lists). The same as its protocol's calendar.
    async fn calendar(&self) -> &str {
        &self.0.calendar
    }

    /// The nation the partnership is in: its working days skip that nation's
    /// bank holidays (the `calendar` field names the same list).
    async fn nation(&self) -> Result<Nation> {
        let nation = DomainNation::from_id(&self.0.calendar)
            .map_err(|e| ServiceError::Internal(e.to_string()))
            .gql()?;
        Ok(nation.into())
    }

    /// The partnership's agencies, by name.
    async fn agencies(&self, ctx: &Context<'_>) -> Result<Vec<Agency>> {
        let loaders = ctx.data::<Loaders>()?;
        let list = loaders.agencies_of.load_one(self.0.id).await.gql()?.unwrap_or_default();
        Ok(list.into_iter().map(Agency).collect())
    }
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct Agency(pub directory::Agency);

/// An organisation in a partnership: police, health, children's social care,
/// education, probation, housing or a voluntary group. Every user acts for one.
#[Object]
impl Agency {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Stable short code, e.g. `wb-police`; tokens carry it in their `agency`
    /// claim. Unique across all partnerships.
    async fn code(&self) -> &str {
        &self.0.code
    }

    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Sector.
    async fn kind(&self) -> AgencyKind {
        let kind: DomainAgencyKind = self.0.kind;
        kind.into()
    }
    /// False once the partnership has deactivated the agency: it keeps its
    /// cases and their history, takes part in nothing new (no case is
    /// raised by it or with it, it joins none), and its tokens are refused
    /// (`UNAUTHENTICATED`).
    async fn active(&self) -> bool {
        self.0.active
    }
    /// When it was deactivated; null while it is active.
    async fn deactivated_at(&self) -> Option<DateTime> {
        self.0.deactivated_at.map(DateTime)
    }

    /// The partnership the agency belongs to.
    async fn partnership(&self, ctx: &Context<'_>) -> Result<Partnership> {
        let loaders = ctx.data::<Loaders>()?;
        loaders
            .partnership
            .load_one(self.0.partnership_id)
            .await
            .gql()?
            .map(Partnership)
            .ok_or_else(|| ServiceError::NotFound("partnership"))
            .gql()
    }
}

/// An agency by id through the request's loader; one that is gone is
/// `NOT_FOUND`. Every field that names an agency resolves through this.
pub(crate) async fn load_agency(ctx: &Context<'_>, id: AgencyId) -> Result<Agency> {
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

/// Queries about partnerships and agencies.
#[derive(Default)]
pub struct DirectoryQuery;

#[Object]
impl DirectoryQuery {
    /// The partnerships the caller may see, by name: a token sees its own
    /// partnership; an anonymous caller (when the server opens the
    /// directory) sees every partnership.
    async fn partnerships(&self, ctx: &Context<'_>) -> Result<Vec<Partnership>> {
        let db = ctx.data::<DatabaseConnection>()?;
        let only = match ctx.data::<Viewer>()? {
            Viewer::Anonymous => None,
            Viewer::Actor(actor) => Some(actor.partnership),
        };
        let list = directory::partnerships(db, only).await.gql()?;
        Ok(list.into_iter().map(Partnership).collect())
    }

    /// The agencies of one partnership, by name. Another partnership than the
    /// token's is `NOT_FOUND`.
    async fn agencies(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Identifier of the partnership.")] partnership_id: ID,
    ) -> Result<Vec<Agency>> {
        let id: PartnershipId = partnership_id
            .parse()
            .map_err(|_| bad_input("partnershipId", "not a valid identifier"))?;
        if let Viewer::Actor(actor) = ctx.data::<Viewer>()?
            && actor.partnership != id
        {
            return Err(ServiceError::NotFound("partnership")).gql();
        }
        let db = ctx.data::<DatabaseConnection>()?;
        let list = directory::agencies(db, id).await.gql()?;
        Ok(list.into_iter().map(Agency).collect())
    }
}

/// A new agency.
#[derive(async_graphql::InputObject)]
pub struct CreateAgencyInput {
    /// Its code, as tokens will carry it in their `agency` claim: 1 to 64
    /// lowercase letters, digits and single hyphens, unique across every
    /// partnership, e.g. `wb-housing`.
    pub code: String,
    /// Its display name.
    pub name: String,
    /// Its sector.
    pub kind: AgencyKind,
}

/// A new name for an agency.
#[derive(async_graphql::InputObject)]
pub struct RenameAgencyInput {
    /// The agency.
    pub agency_id: ID,
    /// The new name (not empty, at most 200 characters).
    pub name: String,
}

/// An agency to deactivate or reactivate.
#[derive(async_graphql::InputObject)]
pub struct AgencyIdInput {
    /// The agency.
    pub agency_id: ID,
}

/// Runs one administrator's change (`directory::administer`).
async fn administer(ctx: &Context<'_>, change: directory::AdminChange) -> Result<Agency> {
    let db = ctx.data::<DatabaseConnection>()?;
    Ok(Agency(directory::administer(db, actor(ctx)?, change).await.gql()?))
}

fn agency_id(id: &ID) -> Result<AgencyId> {
    id.parse().map_err(|_| bad_input("agencyId", "not a valid identifier"))
}

/// Changes to a partnership's agencies, by its business unit: a machine
/// client with the `directory:admin` scope, for its own partnership (an
/// agency of another is `NOT_FOUND`; anyone else is `FORBIDDEN`). Each is
/// recorded (`directoryChanges`); nothing is ever deleted.
#[derive(Default)]
pub struct DirectoryMutation;

#[Object]
impl DirectoryMutation {
    /// Adds an agency to the caller's partnership. A code already taken,
    /// in any partnership, is a `CONFLICT`.
    async fn create_agency(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The agency.")] input: CreateAgencyInput,
    ) -> Result<Agency> {
        administer(
            ctx,
            directory::AdminChange::Create {
                code: input.code,
                name: input.name,
                kind: input.kind.into(),
            },
        )
        .await
    }

    /// Renames an agency (a trust that merges, a service renamed); its
    /// code, cases and tokens are unchanged.
    async fn rename_agency(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The agency and its new name.")] input: RenameAgencyInput,
    ) -> Result<Agency> {
        administer(
            ctx,
            directory::AdminChange::Rename {
                agency: agency_id(&input.agency_id)?,
                name: input.name,
            },
        )
        .await
    }

    /// Deactivates an agency: it keeps its cases and their history, takes
    /// part in nothing new, and its tokens are refused (`UNAUTHENTICATED`)
    /// at once on this server and within `DIRECTORY_CACHE_SECONDS` on
    /// others. Already deactivated: `CONFLICT`.
    async fn deactivate_agency(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The agency.")] input: AgencyIdInput,
    ) -> Result<Agency> {
        administer(
            ctx,
            directory::AdminChange::SetActive {
                agency: agency_id(&input.agency_id)?,
                active: false,
            },
        )
        .await
    }

    /// Pins the version of the partnership's protocol that new cases take
    /// (null: its newest, as published); an unknown version is
    /// `BAD_USER_INPUT`. Open cases keep the version they were raised
    /// under. Recorded as `protocol_adopted`.
    async fn adopt_protocol_version(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The version; null for the newest.")] version: Option<u32>,
    ) -> Result<Partnership> {
        let db = ctx.data::<DatabaseConnection>()?;
        let actor = actor(ctx)?;
        let partnership = crate::domain::access::may_administer_directory(actor)
            .map_err(|r| ServiceError::forbidden(r.to_string(), Default::default()))
            .gql()?;
        let library = ctx.data::<std::sync::Arc<crate::service::protocols::Library>>()?;
        let stored =
            directory::adopt_protocol_version(db, library, partnership, version, &actor.sub)
                .await
                .gql()?;
        Ok(Partnership(stored))
    }

    /// Makes a deactivated agency active again. Already active: `CONFLICT`.
    async fn reactivate_agency(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The agency.")] input: AgencyIdInput,
    ) -> Result<Agency> {
        administer(
            ctx,
            directory::AdminChange::SetActive {
                agency: agency_id(&input.agency_id)?,
                active: true,
            },
        )
        .await
    }
}

/// One recorded change to a partnership's directory.
pub struct DirectoryChange(directory::DirectoryChangeRow);

/// A change to a partnership or one of its agencies: by
/// `escalations directory import`, by the demo load, or by a
/// `directory:admin` client. Never changed or removed.
#[Object]
impl DirectoryChange {
    /// Opaque identifier; changes are ordered by it.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// When.
    async fn at(&self) -> DateTime {
        DateTime(self.0.at)
    }
    /// Who: the client's `sub`, `cli:<user>` for the command line, or
    /// `demo`.
    async fn actor_sub(&self) -> &str {
        &self.0.actor_sub
    }
    /// What: `partnership_created`, `partnership_updated`,
    /// `agency_created`, `agency_updated`, `agency_deactivated` or
    /// `agency_reactivated`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// The agency changed; null for a change to the partnership itself.
    async fn agency(&self, ctx: &Context<'_>) -> Result<Option<Agency>> {
        match self.0.agency_id {
            Some(id) => Ok(Some(load_agency(ctx, id).await?)),
            None => Ok(None),
        }
    }
    /// Each field set or changed, with its value before (null when new)
    /// and after.
    async fn fields(&self) -> Vec<DirectoryFieldChange<'_>> {
        self.0.fields.iter().map(DirectoryFieldChange).collect()
    }
}

/// One field of a directory change.
pub struct DirectoryFieldChange<'a>(&'a (String, Option<String>, Option<String>));

/// A field's value before and after a directory change, as text.
#[Object]
impl DirectoryFieldChange<'_> {
    /// The field: `name`, `kind`, `active`, `protocol` or `calendar`.
    async fn field(&self) -> &str {
        &self.0.0
    }
    /// Its value before; null when the row was new.
    async fn before(&self) -> Option<&str> {
        self.0.1.as_deref()
    }
    /// Its value after.
    async fn after(&self) -> Option<&str> {
        self.0.2.as_deref()
    }
}

/// The directory's record of changes.
#[derive(Default)]
pub struct DirectoryChangesQuery;

#[Object]
impl DirectoryChangesQuery {
    /// The changes to the caller's partnership's directory, newest first:
    /// only for a `directory:admin` client.
    #[graphql(complexity = "super::cost::page(first, child_complexity)")]
    async fn directory_changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many, 1 to 100.", default = 20)] first: i32,
        #[graphql(desc = "Only changes older than this one (the last `id` of the previous page).")]
        before: Option<ID>,
    ) -> Result<Vec<DirectoryChange>> {
        if !(1..=100).contains(&first) {
            return Err(bad_input("first", "must be between 1 and 100"));
        }
        let before = before
            .map(|id| id.parse::<uuid::Uuid>())
            .transpose()
            .map_err(|_| bad_input("before", "not a valid identifier"))?;
        let db = ctx.data::<DatabaseConnection>()?;
        let rows = directory::changes(db, actor(ctx)?, first as u64, before).await.gql()?;
        Ok(rows.into_iter().map(DirectoryChange).collect())
    }
}
