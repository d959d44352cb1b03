//! End-to-end tests: the real server over HTTP against real databases.
//! One test binary, a module per area.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod auth;
mod backup;
mod batching;
mod cases;
mod cli;
mod connections;
mod defaults;
mod directory;
mod directory_admin;
mod edges;
mod errors;
mod events;
mod examples;
mod faults;
mod fidelity;
mod frame;
mod generate;
mod graphiql;
mod hardening;
mod http;
mod lists;
mod metrics;
mod migrations;
mod participants;
mod pollers;
mod processes;
mod properties;
mod protocols;
mod queue;
mod records;
mod report;
mod scalars;
mod schema;
mod scoping;
mod seed_rules;
mod statistics;
mod step_down;
mod subscriptions;
mod telemetry;
mod timers;
mod trusted;
mod walks;
mod webhooks;
mod workflow;
