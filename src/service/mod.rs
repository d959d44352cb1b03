//! Use cases. Reads load what they need for the caller's scope; every
//! change to a case is a `change::CaseChange` run by the one write path,
//! `change::Frame::run`, which persists it with its audit event inside one
//! transaction.
//!
//! Services return plain view types; entities never leave this module.

pub mod audit;
pub mod awaiting;
pub mod case_row;
pub mod cases;
pub mod change;
pub mod demo;
pub mod directory;
mod error;
pub mod events;
pub mod family_told;
pub mod feedback;
pub mod generate;
pub mod hub;
pub mod identity;
pub mod participants;
pub mod protocols;
pub mod readiness;
pub mod records;
pub mod report;
pub mod statistics;
pub mod step_down;
pub mod timers;
pub mod webhooks;
pub mod workflow;

pub use error::ServiceError;
