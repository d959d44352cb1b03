//! The protocols this server knows: what a front end needs to offer the
//! right routes, stages, categories and exclusions.

use std::sync::Arc;

use async_graphql::{Context, Object, Result};

use super::records::RecordKind;
use super::workflow::ExclusionKind;
use crate::domain::catalog::Catalog;
use crate::domain::protocol as p;

/// A partnership's protocol for resolving professional differences (one
/// version of it; a case keeps the version it was raised under).
pub struct Protocol<'a>(&'a p::Protocol);

/// A partnership's protocol for resolving professional differences (one
/// version of it; a case keeps the version it was raised under).
#[Object]
impl Protocol<'_> {
    /// Stable id, e.g. `western-bay`.
    async fn id(&self) -> &str {
        self.0.id()
    }
    /// Version of the definition.
    async fn version(&self) -> u32 {
        self.0.version()
    }
    /// Name.
    async fn name(&self) -> &str {
        self.0.name()
    }
    /// The source document it models.
    async fn source(&self) -> &str {
        self.0.source()
    }
    /// Working-day calendar of its deadlines.
    async fn calendar(&self) -> &str {
        self.0.calendar()
    }
    /// What the protocol is for.
    async fn description(&self) -> &str {
        self.0.description()
    }
    /// Subject categories a case may have.
    async fn categories(&self) -> Vec<Category<'_>> {
        self.0.categories().iter().map(Category).collect()
    }
    /// Matters the protocol excludes, with where each belongs instead.
    async fn exclusions(&self) -> Vec<Exclusion<'_>> {
        self.0.exclusions().iter().map(Exclusion).collect()
    }
    /// Routes through the protocol (most have one, `main`).
    async fn routes(&self) -> Vec<Route<'_>> {
        self.0.routes().iter().map(Route).collect()
    }
}

/// A subject category.
pub struct Category<'a>(&'a p::Category);

/// A subject category.
#[Object]
impl Category<'_> {
    /// Key, as `raiseCase` takes it.
    async fn key(&self) -> &str {
        self.0.key()
    }
    /// Name.
    async fn name(&self) -> &str {
        self.0.name()
    }
}

/// A matter the protocol does not cover.
pub struct Exclusion<'a>(&'a p::Exclusion);

/// A matter the protocol does not cover.
#[Object]
impl Exclusion<'_> {
    /// Which matter.
    async fn kind(&self) -> ExclusionKind {
        self.0.kind().into()
    }
    /// The protocol's words.
    async fn text(&self) -> &str {
        self.0.text()
    }
    /// Where it belongs instead.
    async fn redirect(&self) -> &str {
        self.0.redirect()
    }
}

/// An ordered ladder of stages.
pub struct Route<'a>(&'a p::Route);

/// An ordered ladder of stages.
#[Object]
impl Route<'_> {
    /// Id, as `raiseCase` takes it.
    async fn id(&self) -> &str {
        self.0.id()
    }
    /// Name.
    async fn name(&self) -> &str {
        self.0.name()
    }
    /// When this route applies.
    async fn description(&self) -> &str {
        self.0.description()
    }
    /// The stages, lowest first.
    async fn stages(&self) -> Vec<Stage<'_>> {
        self.0.stages().iter().map(Stage).collect()
    }
}

/// One step of the ladder.
pub struct Stage<'a>(&'a p::Stage);

/// One step of the ladder.
#[Object]
impl Stage<'_> {
    /// Key, e.g. `stage-2`.
    async fn key(&self) -> &str {
        self.0.key()
    }
    /// Number in the protocol's own numbering.
    async fn number(&self) -> u32 {
        self.0.number()
    }
    /// Name.
    async fn name(&self) -> &str {
        self.0.name()
    }
    /// What happens at this stage.
    async fn description(&self) -> &str {
        self.0.description()
    }
    /// Whether a case may be raised here in the normal way.
    async fn is_entry(&self) -> bool {
        self.0.is_entry()
    }
    /// Time limit in working days, where the protocol gives one.
    async fn time_limit_working_days(&self) -> Option<u32> {
        self.0.time_limit_working_days()
    }
    /// Whether the board is told when a case reaches this stage.
    async fn board_told(&self) -> bool {
        self.0.board_told()
    }
    /// Whether whoever escalates must state the timeframe for resolution.
    async fn escalator_states_timeframe(&self) -> bool {
        self.0.escalator_states_timeframe()
    }
    /// Who leads on the raising side, in the protocol's words.
    async fn raising_lead(&self) -> &str {
        self.0.raising_lead().wording()
    }
    /// Who leads on the receiving side, in the protocol's words.
    async fn receiving_lead(&self) -> &str {
        self.0.receiving_lead().wording()
    }
    /// Kinds of record the protocol asks for at this stage.
    async fn required_records(&self) -> Vec<RecordKind> {
        self.0.records().iter().map(|r| r.kind().into()).collect()
    }
}

/// The protocol query.
#[derive(Default)]
pub struct ProtocolQuery;

#[Object]
impl ProtocolQuery {
    /// Every protocol this server knows, by id then version.
    async fn protocols<'c>(&self, ctx: &Context<'c>) -> Result<Vec<Protocol<'c>>> {
        let catalog = ctx.data::<Arc<Catalog>>()?;
        Ok(catalog.all().map(Protocol).collect())
    }
}
