//! hookd as a library: its configuration and the server assembled from it
//! ([`App`]), built the same way by `hookd serve`, the tests and the
//! benchmarks. The command line is `main.rs`.

pub mod app;
pub mod config;
pub mod listener;

pub use app::App;
pub use config::Config;
