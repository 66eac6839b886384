//! hookd-template: Kong's webhook-custom templates (minijinja) in a box.
//!
//! A template is admin input, and minijinja can neither be interrupted nor
//! account for memory: an operator (`~`, `*`), a `{% set %}` block or a
//! recursive macro can grow a value exponentially with no callback, and a
//! render runs to its end. So templates are compiled in the server only
//! to check their syntax at save ([`compile`]), and rendered in worker
//! processes ([`worker`]) that cap their own memory, under a deadline at
//! which the server kills them ([`Renderer`]). A template over its budget
//! fails its own render with an error that names the limit; nothing else
//! notices. A worker compiles a template the first time it renders it and
//! keeps it for the next renders ([`Engine`]), so a hook's templates are
//! not parsed again at every attempt.
//!
//! A hook's condition, a minijinja expression over the event data, is
//! boxed the same way: [`compile_condition`] at save, [`Renderer::evaluate`]
//! in the workers, which keep it compiled as they keep templates.

mod condition;
mod engine;
mod pool;
mod protocol;
pub mod worker;

pub use condition::{MAX_CONDITION, compile_condition};
pub use engine::{Engine, EngineLimits, Escape, Failure, compile};
/// What a template reads: the event data, converted once per render.
pub use minijinja::Value as Context;
pub use pool::{Limits, PoolError, Renderer, WorkerCommand};
pub use protocol::{Answers, Template, Verdict};
