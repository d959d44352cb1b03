//! SeaORM entities: persistence only.
//!
//! These types never cross into the GraphQL layer; `service/` maps them to
//! domain and API types.

pub mod agency;
pub mod case;
pub mod case_event;
pub mod partnership;
