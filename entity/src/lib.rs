//! SeaORM entities: persistence only.
//!
//! These types never cross into the GraphQL layer; `service/` maps them to
//! domain and API types.

pub mod access_log;
pub mod agency;
pub mod agency_view;
pub mod agreed_action;
pub mod awaiting;
pub mod case;
pub mod case_event;
pub mod case_participant;
pub mod case_record;
pub mod change_event;
pub mod directory_change;
pub mod feedback;
pub mod idempotency_key;
pub mod missing_record;
pub mod partnership;
pub mod protocol_version;
pub mod timer;
pub mod webhook_attempt;
pub mod webhook_audit;
pub mod webhook_delivery;
pub mod webhook_endpoint;
