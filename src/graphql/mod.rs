//! The GraphQL API: thin resolvers over `service/`, no business rule here.

pub mod case;
pub mod cost;
pub mod directory;
pub mod error;
pub mod events;
pub mod loaders;
pub mod participants;
pub mod protocols;
pub mod queue;
pub mod records;
pub mod report;
pub mod scalars;
pub mod statistics;
pub mod step_down;
pub mod webhooks;
pub mod workflow;

use async_graphql::{MergedObject, MergedSubscription, SDLExportOptions, Schema};
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::domain::catalog::Catalog;
use crate::service::hub::Hub;
use crate::service::protocols::Library;

use crate::config::GraphqlArgs;

/// Every query of the API.
#[derive(MergedObject, Default)]
pub struct Query(
    directory::DirectoryQuery,
    directory::DirectoryChangesQuery,
    case::CaseQuery,
    events::EventsQuery,
    protocols::ProtocolQuery,
    report::ReportQuery,
    statistics::StatisticsQuery,
    webhooks::WebhooksQuery,
    queue::QueueQuery,
);

/// Every mutation of the API.
#[derive(MergedObject, Default)]
pub struct Mutation(
    workflow::WorkflowMutation,
    records::RecordsMutation,
    step_down::StepDownMutation,
    participants::ParticipantsMutation,
    protocols::ProtocolMutation,
    statistics::FeedbackMutation,
    webhooks::WebhooksMutation,
    directory::DirectoryMutation,
);

/// Every subscription of the API (over WebSocket, `http::subscriptions`).
#[derive(MergedSubscription, Default)]
pub struct Subscription(events::EventsSubscription);

/// The schema type.
pub type ApiSchema = Schema<Query, Mutation, Subscription>;

/// Extra depth the schema allows so the standard introspection query (which
/// nests `ofType` about a dozen levels) passes; `http` holds every other
/// query to the configured depth.
const INTROSPECTION_DEPTH: usize = 12;

/// Builds the schema once per process; the pool, the protocol catalog and
/// the subscription hub ride in its data (absent when only the SDL is
/// wanted).
pub fn build_schema(
    shared: Option<(DatabaseConnection, Arc<Library>, Arc<Hub>)>,
    limits: &GraphqlArgs,
) -> ApiSchema {
    // Tokens, fragment cycles, depth, aliases and the document's size are
    // checked in `http` before execution (depth there lets the standard
    // introspection query through); the schema's own depth limit is a
    // backstop with room for introspection. The cost is counted during
    // validation and held to its limit by `cost::CostLimit`, which says
    // the cost in the error; directives per field are async-graphql's own.
    let mut builder = Schema::build(Query::default(), Mutation::default(), Subscription::default())
        .limit_depth(limits.max_depth.saturating_add(INTROSPECTION_DEPTH))
        .limit_directives(limits.max_directives)
        .extension(error::request::Codes)
        .extension(cost::CostLimit);
    if limits.production {
        builder = builder.disable_introspection().disable_suggestions();
    }
    if let Some((db, protocols, hub)) = shared {
        builder = builder.data(db).data(protocols).data(hub);
    }
    builder.finish()
}

/// The protocols this process knows now (a cheap read: the catalog is
/// swapped whole when it grows).
pub(crate) fn catalog(ctx: &async_graphql::Context<'_>) -> async_graphql::Result<Arc<Catalog>> {
    Ok(ctx.data::<Arc<Library>>()?.current())
}

/// Makes sure the catalog knows the protocol version of each of `cases`
/// (one raised by another process under a version published there is
/// loaded from the database), before their fields read it.
pub(crate) async fn know_versions(
    ctx: &async_graphql::Context<'_>,
    cases: &[crate::service::cases::Case],
) -> async_graphql::Result<()> {
    use crate::graphql::error::GqlResult;
    let db = ctx.data::<DatabaseConnection>()?;
    let library = ctx.data::<Arc<Library>>()?;
    library
        .ensure(db, cases.iter().map(|c| (c.protocol_id.as_str(), c.protocol_version)))
        .await
        .gql()?;
    Ok(())
}

/// The SDL as `schema.graphql` holds it: sorted, so diffs stay readable.
pub fn export_sdl() -> String {
    build_schema(None, &GraphqlArgs::default()).sdl_with_options(
        SDLExportOptions::new()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items()
            .include_specified_by(),
    )
}
