//! The template worker for the tests of the template crate; `hookd
//! template-worker` is the same worker in production.

// As in hookd, so that the memory limit is measured under its allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hookd_template::worker::main()
}
