//! `hookd guest inspect FILE.wasm`: what a guest is and what it could
//! touch under this configuration, offline: no server, no store.

use anyhow::Context;
use hookd::config::Config;
use hookd_sandbox::{GuestAudit, GuestReport, Sandbox};
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
    let audit = sandbox.audit(&report);
    if json {
        let mut value = serde_json::to_value(&audit)?;
        value["guest"] = serde_json::to_value(&report)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", describe(file, &report, &audit));
    }
    Ok(())
}

fn describe(file: &Path, report: &GuestReport, audit: &GuestAudit) -> String {
    let mut out = format!(
        "{}: {}, {} bytes\nsha256: {}\nexports: {}\nimports:\n",
        file.display(),
        report.kind,
        report.size,
        report.digest,
        report.exports.join(", ")
    );
    let width = audit
        .imports
        .iter()
        .map(|i| i.import.len())
        .max()
        .unwrap_or(0);
    for i in &audit.imports {
        let class = i.capability.map_or("-", |c| c.as_str());
        out.push_str(&format!("  {:width$}  {class}\n", i.import));
    }
    let classes: Vec<&str> = audit.capabilities.iter().map(|c| c.as_str()).collect();
    out.push_str(&format!("capabilities: {}\n", or_none(&classes)));
    out.push_str(&format!(
        "under untrusted_wasm = {}:\n",
        audit.mode.as_str()
    ));
    let granted: Vec<&str> = audit.would_grant.iter().map(|c| c.as_str()).collect();
    out.push_str(&format!("  could be granted: {}\n", or_none(&granted)));
    for w in &audit.would_deny {
        let item = w
            .item
            .as_deref()
            .map(|i| format!(" {i}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  denied: {}{item}: {}\n",
            w.capability.as_str(),
            w.reason
        ));
    }
    out
}

fn or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
