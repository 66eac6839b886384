//! The template worker that the delivery tests spawn; `hookd
//! template-worker` is the same worker in production.

fn main() -> std::process::ExitCode {
    hookd_template::worker::main()
}
