//! `hookd guests run FILE.wasm`: a guest on one event, offline, in the
//! server's own sandbox. The flags are the hook's request and are granted
//! as under `untrusted_wasm = on` (the author decides what the guest may
//! touch); hookd's own secrets, the outbound address policy
//! (`outbound_allow_cidrs`) and the configuration's limits apply as in the
//! server. It prints the result, the guest's log and stdio lines (on
//! stderr, as the server logs them), every sandbox decision (what the
//! audit log would record), the wall time and the peak memory.

use anyhow::{Context, bail};
use clap::ValueEnum;
use hookd::config::Config;
use hookd_model::capability::{Capabilities, DirGrant, Limits, UntrustedWasm, check_lambda};
use hookd_model::hook::{InstanceMode, LambdaConfig};
use hookd_sandbox::{
    AuditRecord, Failure, Instance, Invocation, Outcome, Sandbox, SandboxConfig, Verdict,
    resolve_path,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use uuid::Uuid;

/// The flags of `hookd guests run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The guest: a component of world hookd:lambda or a WASI preview-1
    /// command module.
    file: PathBuf,
    /// The event's data, JSON; `-` reads standard input. Without it, `{}`.
    #[arg(long, short)]
    data: Option<PathBuf>,
    /// The event's source.
    #[arg(long, default_value = "crud")]
    source: String,
    /// The event's name.
    #[arg(long, default_value = "consumers:create")]
    event: String,
    /// A host the guest may call over HTTP (`api.example.com`,
    /// `*.slack.com:443`, `127.0.0.1:8080`); repeatable.
    #[arg(long = "http", value_name = "HOST")]
    http: Vec<String>,
    /// An environment variable the guest may read: `NAME` (this process's
    /// value) or `NAME=VALUE`; repeatable.
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    env: Vec<String>,
    /// A directory preopened for the guest, `HOST:GUEST` (read-only) or
    /// `HOST:GUEST:rw`; repeatable.
    #[arg(long = "dir", value_name = "HOST:GUEST[:rw]")]
    dirs: Vec<String>,
    /// Linear memory, bytes (the configuration's default otherwise).
    #[arg(long)]
    memory: Option<u64>,
    /// Wall time of each call: `500ms`, `5s` (the configuration's default
    /// otherwise).
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Fuel of each call; needs `sandbox_fuel_metering = true`.
    #[arg(long)]
    fuel: Option<u64>,
    /// A fresh instance per call, or one kept between the calls of
    /// `--repeat`, as a hook's `config.instance`.
    #[arg(long, value_enum, default_value_t = InstanceArg::PerEvent)]
    instance: InstanceArg,
    /// Runs the event this many times, as successive events of one hook.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
}

/// `config.instance`, as a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum InstanceArg {
    PerEvent,
    Reused,
}

/// How a run ends, as the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Every call succeeded: 0.
    Success,
    /// The guest returned its own error (or a command exited non-zero): 3.
    GuestError,
    /// The guest trapped: 4.
    Trap,
    /// A limit stopped it (time, memory, fuel, output size): 5.
    Limit,
    /// hookd could not run it: 1, as for a bad file or flag.
    CannotRun,
}

impl Ending {
    fn of(failure: &Failure) -> Ending {
        match failure {
            Failure::GuestError(_) => Ending::GuestError,
            Failure::Trap(_) | Failure::StackOverflow => Ending::Trap,
            Failure::Timeout(_)
            | Failure::MemoryLimit(_)
            | Failure::FuelExhausted(_)
            | Failure::OutputTooLarge { .. } => Ending::Limit,
            // Neither is the guest's doing: hookd's own failure.
            Failure::Disabled | Failure::Host(_) => Ending::CannotRun,
        }
    }

    fn code(self) -> ExitCode {
        ExitCode::from(match self {
            Ending::Success => 0,
            Ending::GuestError => 3,
            Ending::Trap => 4,
            Ending::Limit => 5,
            Ending::CannotRun => 1,
        })
    }
}

/// Runs the guest as asked and prints what happened; the exit code of the
/// first call that failed (every call runs), or 0.
pub fn run(config: &Config, args: RunArgs, json: bool) -> anyhow::Result<ExitCode> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let data = read_data(args.data.as_ref())?;
    let (lambda, env_values) = request(&args)?;
    let sandbox = Sandbox::new(SandboxConfig {
        // The flags are the grant: no ceiling between them and the guest.
        mode: UntrustedWasm::On,
        // Offline: nothing is cached, nothing written.
        cache_dir: None,
        env_values,
        ..config.sandbox()?
    })?;
    let sandbox_config = sandbox.config();
    check_lambda(
        sandbox_config.mode,
        &sandbox_config.ceiling,
        &lambda.capabilities,
        &lambda.limits,
        resolve_path,
    )
    .map_err(|v| anyhow::anyhow!("{}", v.message()))?;
    let guest = sandbox
        .prepare(&bytes)
        .map_err(|e| anyhow::anyhow!(hookd_model::error_chain(&e)))
        .with_context(|| format!("{} is not a guest hookd can run", args.file.display()))?;
    let grant = sandbox.grant(&lambda, guest.report());
    let name = args
        .file
        .file_stem()
        .map_or_else(|| "guest".into(), |s| s.to_string_lossy().into_owned());
    let instance = match guest.report().kind.instance(lambda.instance) {
        InstanceMode::PerEvent => Instance::Fresh,
        InstanceMode::Reused => Instance::Reused {
            version: 0,
            step: 0,
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // One hook id for every call, as successive events of one hook.
    let hook_id = Uuid::new_v4();
    let mut ending = Ending::Success;
    let mut runs = Vec::new();
    for call in 1..=args.repeat {
        let outcome = runtime.block_on(sandbox.invoke(
            &guest,
            &grant,
            Invocation {
                hook_id,
                guest_name: &name,
                event_id: Uuid::new_v4(),
                source: &args.source,
                event: &args.event,
                data: data.clone(),
                instance,
            },
        ));
        if let (Ending::Success, Err(failure)) = (ending, &outcome.result) {
            ending = Ending::of(failure);
        }
        if json {
            runs.push(report(&outcome));
        } else {
            print!("{}", describe(call, args.repeat, &outcome));
        }
    }
    if json {
        let answer = json!({"grant": grant, "runs": runs});
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", describe_withheld(&grant.withheld));
    }
    Ok(ending.code())
}

/// The event data: the file's, standard input's, or `{}`; JSON.
fn read_data(path: Option<&PathBuf>) -> anyhow::Result<String> {
    let text = match path {
        None => return Ok("{}".into()),
        Some(p) if p.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            text
        }
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
    };
    let value: Value = serde_json::from_str(&text).context("the event data is not JSON")?;
    Ok(value.to_string())
}

/// The hook's lambda configuration the flags stand for, and the values of
/// the variables given as `NAME=VALUE`.
fn request(args: &RunArgs) -> anyhow::Result<(LambdaConfig, BTreeMap<String, String>)> {
    let mut env = Vec::new();
    let mut values = BTreeMap::new();
    for item in &args.env {
        match item.split_once('=') {
            Some((name, value)) => {
                values.insert(name.to_string(), value.to_string());
                env.push(name.to_string());
            }
            None => env.push(item.clone()),
        }
    }
    let dirs = args
        .dirs
        .iter()
        .map(|d| dir_grant(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let lambda = LambdaConfig {
        functions: vec![args.file.display().to_string()],
        capabilities: Capabilities {
            http: args.http.clone(),
            env,
            dirs,
        },
        limits: Limits {
            memory: args.memory,
            timeout_ms: args
                .timeout
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            fuel: args.fuel,
        },
        instance: match args.instance {
            InstanceArg::PerEvent => InstanceMode::PerEvent,
            InstanceArg::Reused => InstanceMode::Reused,
        },
    };
    Ok((lambda, values))
}

/// `HOST:GUEST` or `HOST:GUEST:rw`.
fn dir_grant(flag: &str) -> anyhow::Result<DirGrant> {
    let (paths, write) = match flag.strip_suffix(":rw") {
        Some(paths) => (paths, true),
        None => (flag.strip_suffix(":ro").unwrap_or(flag), false),
    };
    let Some((host, guest)) = paths.split_once(':') else {
        bail!("--dir {flag}: write HOST:GUEST or HOST:GUEST:rw");
    };
    Ok(DirGrant {
        host: host.to_string(),
        guest: guest.to_string(),
        write,
    })
}

/// One call for `--json`.
fn report(outcome: &Outcome) -> Value {
    let (result, failure) = match &outcome.result {
        Ok(Some(data)) => (
            serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.clone())),
            Value::Null,
        ),
        Ok(None) => (Value::Null, Value::Null),
        Err(failure) => (
            Value::Null,
            json!({"kind": failure, "message": failure.to_string()}),
        ),
    };
    json!({
        "ok": outcome.result.is_ok(),
        "changed": matches!(outcome.result, Ok(Some(_))),
        "result": result,
        "failure": failure,
        "audit": outcome.audit,
        "output": outcome.output,
        "elapsed_ms": outcome.elapsed.as_secs_f64() * 1e3,
        "peak_memory": outcome.peak_memory,
        "reused": outcome.reused,
    })
}

/// One call for people.
fn describe(call: u32, of: u32, outcome: &Outcome) -> String {
    let mut out = String::new();
    if of > 1 {
        out.push_str(&format!("call {call} of {of}\n"));
    }
    match &outcome.result {
        Ok(Some(data)) => {
            let shown = serde_json::from_str::<Value>(data)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_else(|_| data.clone());
            out.push_str(&format!("result:\n{shown}\n"));
        }
        Ok(None) => out.push_str("result: unchanged (the guest returned no data)\n"),
        Err(failure) => out.push_str(&format!("failed: {failure}\n")),
    }
    out.push_str(&describe_audit(&outcome.audit));
    out.push_str(&format!(
        "time: {:.2} ms   peak memory: {}   instance: {}\n",
        outcome.elapsed.as_secs_f64() * 1e3,
        mebibytes(outcome.peak_memory),
        if outcome.reused {
            "kept from an earlier call"
        } else {
            "new"
        },
    ));
    out
}

fn describe_audit(audit: &[AuditRecord]) -> String {
    if audit.is_empty() {
        return "decisions: none\n".into();
    }
    let mut out = String::from("decisions:\n");
    for record in audit {
        let times = if record.count > 1 {
            format!(" (x{})", record.count)
        } else {
            String::new()
        };
        let reason = record
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        let verdict = match record.verdict {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
        };
        out.push_str(&format!(
            "  {verdict} {} {}{times}{reason}\n",
            record.capability.as_str(),
            record.target,
        ));
    }
    out
}

fn describe_withheld(withheld: &[hookd_model::capability::Withheld]) -> String {
    let mut out = String::new();
    for w in withheld {
        let item = w
            .item
            .as_deref()
            .map(|i| format!(" {i}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "withheld: {}{item}: {}\n",
            w.capability.as_str(),
            w.reason
        ));
    }
    out
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_host_guest_and_an_optional_mode() {
        let d = dir_grant("/srv/data:/data").unwrap();
        assert_eq!(
            (d.host.as_str(), d.guest.as_str(), d.write),
            ("/srv/data", "/data", false)
        );
        assert!(dir_grant("/srv/data:/data:rw").unwrap().write);
        assert!(!dir_grant("/srv/data:/data:ro").unwrap().write);
        assert!(dir_grant("/srv/data").is_err());
    }

    #[test]
    fn each_failure_has_its_exit_code() {
        let code = |f: Failure| Ending::of(&f);
        assert_eq!(code(Failure::GuestError("no".into())), Ending::GuestError);
        assert_eq!(code(Failure::Trap("unreachable".into())), Ending::Trap);
        assert_eq!(code(Failure::StackOverflow), Ending::Trap);
        assert_eq!(code(Failure::Timeout(5)), Ending::Limit);
        assert_eq!(code(Failure::MemoryLimit(1)), Ending::Limit);
        assert_eq!(code(Failure::FuelExhausted(1)), Ending::Limit);
        assert_eq!(code(Failure::Host("no engine".into())), Ending::CannotRun);
    }
}
