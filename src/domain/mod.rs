//! The rules of the professional-differences protocols, as plain Rust.
//!
//! Nothing here does I/O, touches the database or knows about GraphQL:
//! services load state, call these functions and persist what they return.

pub mod access;
pub mod actor;
pub mod agency;
pub mod awaiting;
pub mod board;
pub mod calendar;
pub mod catalog;
pub mod deadline;
pub mod definition;
pub mod directory;
pub mod event;
pub mod family_told;
pub mod ids;
pub mod milestone;
pub mod policy;
pub mod protocol;
pub mod protocol_diff;
pub mod role;
pub mod step_down;
pub mod webhook;
pub mod workflow;
