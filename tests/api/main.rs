//! End-to-end tests: the real server over HTTP against real databases.
//! One test binary, a module per area.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod auth;
mod cases;
mod cli;
mod directory;
mod http;
mod migrations;
mod schema;
mod workflow;
