//! hookd: Kong's Event Hooks as a standalone server.

mod config;
mod inspect;
mod serve;

use clap::{Parser, Subcommand};
use config::{Config, LogFormat};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Works with guests of the lambda handler.
    #[command(subcommand)]
    Guest(GuestCommand),
}

#[derive(Subcommand)]
enum GuestCommand {
    /// Prints what a guest is, what it imports and what this
    /// configuration's mode and ceiling would grant it; offline.
    Inspect {
        /// The guest: a component of world hookd:lambda or a WASI
        /// preview-1 command module.
        file: PathBuf,
        /// Prints JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hookd: {}", error_chain(&e));
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Serve {
            listen,
            data_dir,
            log_format,
        } => {
            let mut config = config;
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
        Command::Guest(GuestCommand::Inspect { file, json }) => {
            match inspect::run(&config, &file, json) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hookd: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Config => {
            let text = serde_json::to_string_pretty(&config.redacted()).unwrap_or_default();
            println!("{text}");
            ExitCode::SUCCESS
        }
    }
}

/// An error with its causes, on one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
