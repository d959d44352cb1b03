//! Partnerships and agencies.

use async_graphql::{Context, ID, Object, Result};
use sea_orm::DatabaseConnection;

use super::error::{GqlResult, bad_input};
use super::loaders::Loaders;
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
