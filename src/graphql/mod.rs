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
    shared: Option<(DatabaseConnection, Arc<Catalog>, Arc<Hub>)>,
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
    if let Some((db, catalog, hub)) = shared {
        builder = builder.data(db).data(catalog).data(hub);
    }
    builder.finish()
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
