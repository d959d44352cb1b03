//! Use cases: each loads what it needs, applies a domain rule and persists
//! the result (with its audit event) inside one transaction.
//!
//! Services return plain view types; entities never leave this module.

pub mod audit;
pub mod cases;
pub mod demo;
pub mod directory;
mod error;
pub mod events;
pub mod feedback;
pub mod generate;
pub mod idempotency;
pub mod identity;
pub mod records;
pub mod report;
pub mod statistics;
pub mod tx;
pub mod workflow;

pub use error::ServiceError;
