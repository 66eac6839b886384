//! The worker: a process that renders templates and evaluates conditions
//! for the server, one request at a time, under a memory limit it sets on itself before it
//! reads any template. A template that needs more memory makes an
//! allocation fail, which aborts the worker alone; one that runs too long
//! is killed by the server ([`crate::Renderer`]). Either way the server
//! answers that render with an error and starts a fresh worker.
//!
//! `hookd template-worker` runs this in production; the template crate's
//! tests run it as `hookd-template-worker`.

use crate::condition::{self, Conditions};
use crate::engine::Engine;
use crate::protocol::{self, Answers, Hello, OwnedRequest};
use rustix::process::{Resource, Rlimit, Signal, set_parent_process_death_signal, setrlimit};
use std::io;
use std::process::ExitCode;

/// The largest hello frame: a few numbers.
const MAX_HELLO: usize = 4096;

/// Serves requests on stdin and stdout until stdin ends.
pub fn main() -> ExitCode {
    match serve(&mut io::stdin().lock(), &mut io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookd template worker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(input: &mut impl io::Read, output: &mut impl io::Write) -> io::Result<()> {
    // A worker outliving a killed server would render on alone: its end
    // of the pipes is only read between renders.
    set_parent_process_death_signal(Some(Signal::KILL))?;
    let Some(hello) = protocol::read::<Hello>(input, MAX_HELLO)? else {
        return Ok(());
    };
    limit_memory(hello.memory)?;
    let mut engine = Engine::new(hello.engine);
    let condition_env = condition::environment(hello.engine);
    let mut conditions = Conditions::new(&condition_env);
    let max_request = usize::try_from(hello.memory).unwrap_or(usize::MAX);
    while let Some(request) = protocol::read::<OwnedRequest>(input, max_request)? {
        match request {
            OwnedRequest::Render { templates, context } => {
                let context = minijinja::Value::from_serialize(&context);
                let answers: Answers = templates
                    .iter()
                    .map(|t| engine.render(&t.source, t.escape, &context))
                    .collect();
                protocol::write(output, &answers)?;
            }
            OwnedRequest::Evaluate { condition, context } => {
                let context = minijinja::Value::from_serialize(&context);
                protocol::write(output, &conditions.evaluate(&condition, &context))?;
            }
        }
    }
    Ok(())
}

/// Caps the process's data segment (heap and private writable mappings,
/// where every allocation lands, but not the program's code, as
/// RLIMIT_AS would) and turns core dumps off, so that a template that exhausts its memory costs an abort, not a
/// core file the size of the limit.
fn limit_memory(bytes: u64) -> io::Result<()> {
    let limit = |n| Rlimit {
        current: Some(n),
        maximum: Some(n),
    };
    setrlimit(Resource::Core, limit(0))?;
    setrlimit(Resource::Data, limit(bytes))?;
    Ok(())
}
