//! What hookd's tests share, in one place: a webhook receiver on loopback
//! ([`receiver`]), waiting for something to happen ([`eventually`]), the
//! example guests ([`guests`]), the loopback fixtures ([`fixtures`]) and
//! the log of a `hookd serve` process ([`process`]).
//! A library of its own, so that every suite uses the same parts instead
//! of copies or `#[path]` includes. Not published.
#![deny(missing_docs)]

pub mod fixtures;
pub mod guests;
pub mod poll;
pub mod process;
pub mod receiver;

pub use poll::{PATIENCE, eventually};
pub use receiver::Receiver;
