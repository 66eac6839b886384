//! `hookd guest inspect FILE.wasm`: what a guest is and what it could
//! touch under this configuration, offline: no server, no store.

use anyhow::Context;
use hookd::config::Config;
use hookd_sandbox::Sandbox;
use std::path::Path;

/// Inspects the file and prints the report, as JSON or for people.
pub fn run(config: &Config, file: &Path, json: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let sandbox = Sandbox::new(hookd_sandbox::SandboxConfig {
        // Offline: nothing is cached, nothing written.
        cache_dir: None,
        ..config.sandbox()?
    })?;
    let report = sandbox
        .inspect(&bytes)
        .map_err(|e| anyhow::anyhow!(hookd_model::error_chain(&e)))
        .with_context(|| format!("{} is not a guest hookd can run", file.display()))?;
    let mut audit = serde_json::to_value(sandbox.audit(&report))?;
    audit["guest"] = serde_json::to_value(&report)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&audit)?);
    } else {
        let title = format!("{} ({} bytes)", file.display(), report.size);
        print!("{}", crate::cli::guests::describe_audit(&title, &audit));
    }
    Ok(())
}
