//! The GraphQL API: thin resolvers over `service/`, no business rule here.

pub mod case;
pub mod directory;
pub mod error;
pub mod loaders;
pub mod protocols;
pub mod records;
pub mod report;
pub mod statistics;
pub mod workflow;

use async_graphql::{EmptySubscription, MergedObject, SDLExportOptions, Schema};
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::domain::catalog::Catalog;

use crate::config::GraphqlArgs;

/// Every query of the API.
#[derive(MergedObject, Default)]
pub struct Query(
    directory::DirectoryQuery,
    case::CaseQuery,
    protocols::ProtocolQuery,
    report::ReportQuery,
    statistics::StatisticsQuery,
);

/// Every mutation of the API.
#[derive(MergedObject, Default)]
pub struct Mutation(
    workflow::WorkflowMutation,
    records::RecordsMutation,
    statistics::FeedbackMutation,
);

/// The schema type.
pub type ApiSchema = Schema<Query, Mutation, EmptySubscription>;

/// Builds the schema once per process; the pool and the protocol catalog
/// ride in its data (absent when only the SDL is wanted).
pub fn build_schema(
    shared: Option<(DatabaseConnection, Arc<Catalog>)>,
    limits: &GraphqlArgs,
) -> ApiSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity);
    if let Some((db, catalog)) = shared {
        builder = builder.data(db).data(catalog);
    }
    builder.finish()
}

/// The SDL as `schema.graphql` holds it: sorted, so diffs stay readable.
pub fn export_sdl() -> String {
    build_schema(None, &GraphqlArgs::default()).sdl_with_options(
        SDLExportOptions::new().sorted_fields().sorted_arguments().sorted_enum_items(),
    )
}
