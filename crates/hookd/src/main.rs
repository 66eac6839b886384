//! hookd: Kong's Event Hooks as a standalone server.

mod cli;
mod guest_run;
mod inspect;
mod scaffold;
mod serve;

use clap::{Parser, Subcommand};
use cli::{ClientArgs, Verb};
use hookd::config::{Config, LogFormat};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

// sled and hyper allocate per write and per request: with glibc's malloc
// the server ran about a third slower (see the workspace Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "hookd",
    version,
    about = "Kong-compatible event hooks, durable, with WebAssembly lambdas"
)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, short, global = true, env = "HOOKD_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server.
    Serve {
        /// Address of the Admin API (overrides `listen`).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Data directory (overrides `data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Log format (overrides `log_format`).
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Prints the effective configuration, secrets redacted.
    Config,
    /// Brings the PostgreSQL schema of `storage = "postgres"` up to date,
    /// and nothing else (`hookd serve` does it too when it starts).
    Migrate,
    /// Prints the guest contract: the WIT of world hookd:lambda/lambda
    /// (as `GET /wit` serves it).
    Wit,
    /// Guests of the lambda handler: a file inspected offline, or a
    /// running server's.
    #[command(visible_alias = "guest")]
    #[command(subcommand)]
    Guests(GuestCommand),
    /// Event hooks of a running server.
    #[command(subcommand)]
    Hooks(cli::hooks::HooksCommand),
    /// Deliveries of a running server.
    #[command(subcommand)]
    Deliveries(cli::deliveries::DeliveriesCommand),
    /// Stored records a server could not decode and moved aside.
    #[command(subcommand)]
    Quarantine(cli::quarantine::QuarantineCommand),
    /// Lists the sandbox's run-time decisions for guests (`GET /audit`).
    Audit(cli::audit::AuditArgs),
    /// Writes a server's entities, event hooks and guests as a declarative
    /// document (YAML) that `apply` reproduces.
    Dump(cli::dump::DumpArgs),
    /// Makes a server hold what a declarative document says, writing only
    /// what differs.
    Apply(cli::apply::ApplyArgs),
    /// Renders webhook-custom templates for `hookd serve`, which starts
    /// it: requests on stdin, answers on stdout.
    #[command(hide = true)]
    TemplateWorker,
}

#[derive(Subcommand)]
enum GuestCommand {
    /// Prints what a guest is, what it imports and what this
    /// configuration's mode and ceiling would grant it; offline.
    Inspect {
        /// The guest: a component of world hookd:lambda or a WASI
        /// preview-1 command module.
        file: PathBuf,
    },
    /// Runs a guest on one event, offline, in the server's sandbox: the
    /// flags are its grants and limits. Prints its result, log lines
    /// (stderr), every sandbox decision, wall time and peak memory. Exit
    /// code 0 on success, 3 for the guest's own error, 4 for a trap, 5 for
    /// a limit (time, memory, fuel, output), 1 when it cannot run, 2 for
    /// a bad configuration.
    Run(guest_run::RunArgs),
    /// Writes a guest project ready to build: a handler that changes the
    /// event data, the WIT, a build script, a README and a sample event;
    /// offline.
    New {
        /// The project's name: its directory, package and guest name.
        name: String,
        /// Its language.
        #[arg(long, value_enum)]
        lang: scaffold::Lang,
        /// Where to write it: the project is DIR/NAME.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    #[command(flatten)]
    Server(cli::guests::GuestsCommand),
}

/// Verbs that run here and talk to no server.
const OFFLINE: &[&[&str]] = &[
    &["serve"],
    &["config"],
    &["migrate"],
    &["wit"],
    &["guests", "inspect"],
    &["guests", "run"],
    &["guests", "new"],
];

/// The command line. The client's `--url` and `--token` are global, so
/// that they go before or after a verb; offline verbs, which ignore them,
/// get hidden ones of their own instead, which clap does not overwrite
/// with the global ones, so that their help does not offer them.
fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = Cli::command();
    for path in OFFLINE {
        command = without_client_options(command, path);
    }
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn without_client_options(command: clap::Command, path: &[&str]) -> clap::Command {
    match path {
        [] => ["url", "token"].into_iter().fold(command, |command, name| {
            command.arg(clap::Arg::new(name).long(name).hide(true))
        }),
        [name, rest @ ..] => command.mut_subcommand(*name, |sub| without_client_options(sub, rest)),
    }
}

/// `hookd migrate`: the migrations the database lacked, applied.
fn migrate(config: &Config) -> anyhow::Result<Vec<i64>> {
    use anyhow::Context;
    if config.storage != hookd::config::Storage::Postgres {
        anyhow::bail!("migrate needs storage = \"postgres\"; sled needs no migrations");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime
        .block_on(hookd_store::Store::migrate(&config.postgres()))
        .context("migrating the database")
}

fn main() -> ExitCode {
    let cli = parse();
    // Only the verbs that run here read the configuration: a client verb
    // talks to a server that has its own.
    let config = || {
        Config::load(cli.config.as_deref(), |k| std::env::var(k).ok()).map_err(|e| {
            eprintln!("hookd: {}", hookd_model::error_chain(&e));
            ExitCode::from(2)
        })
    };
    match cli.command {
        Command::TemplateWorker => hookd_template::worker::main(),
        Command::Serve {
            listen,
            data_dir,
            log_format,
        } => {
            let mut config = match config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            config.listen = listen.unwrap_or(config.listen);
            config.data_dir = data_dir.unwrap_or(config.data_dir);
            config.log_format = log_format.unwrap_or(config.log_format);
            match serve::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hookd: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Guests(GuestCommand::Inspect { file }) => {
            let config = match config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            match inspect::run(&config, &file, cli.client.json) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hookd: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Guests(GuestCommand::Run(args)) => {
            let config = match config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            // The guest's log and stdio lines, as the server would log them.
            tracing_subscriber::fmt()
                .with_env_filter("hookd::guest=trace")
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .without_time()
                .with_target(false)
                .init();
            match guest_run::run(&config, args, cli.client.json) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("hookd: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Wit => {
            print!("{}", hookd_sandbox::WIT);
            ExitCode::SUCCESS
        }
        Command::Migrate => {
            let config = match config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            match migrate(&config) {
                Ok(applied) if applied.is_empty() => {
                    println!("the schema is up to date");
                    ExitCode::SUCCESS
                }
                Ok(applied) => {
                    for version in applied {
                        println!("applied migration {version}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hookd: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Guests(GuestCommand::New { name, lang, dir }) => {
            match scaffold::run(&dir, &name, lang) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hookd: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Config => match config() {
            Ok(config) => {
                let text = serde_json::to_string_pretty(&config.redacted()).unwrap_or_default();
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Guests(GuestCommand::Server(command)) => {
            cli::run(&cli.client, Verb::Guests(command))
        }
        Command::Hooks(command) => cli::run(&cli.client, Verb::Hooks(command)),
        Command::Deliveries(command) => cli::run(&cli.client, Verb::Deliveries(command)),
        Command::Quarantine(command) => cli::run(&cli.client, Verb::Quarantine(command)),
        Command::Audit(filter) => cli::run(&cli.client, Verb::Audit(filter)),
        Command::Dump(args) => cli::run(&cli.client, Verb::Dump(args)),
        Command::Apply(args) => cli::run(&cli.client, Verb::Apply(args)),
    }
}
