//! hookd's data model: event hooks and their handler configurations,
//! events, the sources catalogue, gateway entity schemas and capability
//! grants, all validated in Kong's error shape. No I/O but the wall
//! clock's reading ([`clock`]).
#![deny(missing_docs)]

pub mod audit;
pub mod balancer;
pub mod capability;
pub mod catalogue;
pub mod clock;
pub mod delivery;
pub mod entity;
mod error_chain;
pub mod event;
pub mod example;
pub mod hook;
pub mod host_port;
pub mod kong;
pub mod nesting;
pub mod operational;
pub mod outbound;
pub mod schema;
pub mod violation;

pub use catalogue::{Catalogue, EventInfo};
pub use error_chain::error_chain;
pub use event::{Event, Operation};
pub use hook::{EventHook, Handler};
pub use violation::Violations;

/// Unix time in milliseconds: the one clock reading the model needs,
/// passed in rather than read here.
pub type UnixMillis = i64;
