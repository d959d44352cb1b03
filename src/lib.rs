//! `escalations`: a GraphQL API server for resolving professional differences
//! between the agencies of a safeguarding children partnership.
//!
//! See ARCHITECTURE.md for the map. In short: `domain` holds the rules (no
//! I/O), `service` the use cases (one transaction each), `graphql` the thin
//! API layer, `http` the wiring; `app` runs the subcommands.

pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod graphql;
pub mod http;
pub mod in_flight;
pub mod listener;
pub mod metrics;
pub mod service;
pub mod telemetry;
