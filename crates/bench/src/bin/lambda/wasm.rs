//! The wasm side: hookd's sandbox as the server sets it up (default
//! configuration, default grant, fuel metering as asked), each call on a
//! fresh instance or on one kept for the hook (`instance = "reused"`).

use anyhow::{Context, anyhow, bail};
use hookd_model::Event;
use hookd_model::hook::LambdaConfig;
use hookd_sandbox::{EffectiveGrant, Guest, Instance, Invocation, Sandbox, SandboxConfig};
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

/// A guest ready to run with the grant a lambda hook naming it gets.
struct Ready {
    name: &'static str,
    guest: Arc<Guest>,
    grant: EffectiveGrant,
}

/// The same transform in other languages (`transformed_by` says which):
/// measured when `guest-examples/build.sh` has built them.
const OTHER_TRANSFORMS: &[&str] = &["python-transform", "js-transform"];

/// The guests and the event they are given.
pub struct Bench {
    sandbox: Sandbox,
    noop: Ready,
    transform: Ready,
    /// The other languages' transforms that are built.
    others: Vec<Ready>,
    /// Those that are not.
    pub missing: Vec<&'static str>,
    /// The event every call gets.
    pub event: Event,
    data: String,
}

impl Bench {
    /// Compiles the `noop` and `transform` guests found under `guests`,
    /// and the other languages' transforms that are built there, for an
    /// engine that counts fuel when `fuel_metering`.
    pub fn new(guests: &Path, event: &Event, fuel_metering: bool) -> anyhow::Result<Self> {
        let mut config = SandboxConfig::default();
        config.ceiling.fuel_metering = fuel_metering;
        let sandbox = Sandbox::new(config).context("building the sandbox")?;
        let ready = |name: &'static str| -> anyhow::Result<Ready> {
            let path = guests.join(name).join(format!("{name}.wasm"));
            let bytes = std::fs::read(&path).with_context(|| {
                format!(
                    "reading {} (guest-examples/build.sh builds it)",
                    path.display()
                )
            })?;
            let guest = sandbox
                .prepare(&bytes)
                .with_context(|| format!("compiling {}", path.display()))?;
            let lambda = LambdaConfig {
                functions: vec![name.to_string()],
                capabilities: Default::default(),
                limits: Default::default(),
                instance: Default::default(),
            };
            let grant = sandbox.grant(&lambda, guest.report());
            Ok(Ready { name, guest, grant })
        };
        let (built, missing): (Vec<&'static str>, Vec<&'static str>) = OTHER_TRANSFORMS
            .iter()
            .partition(|name| guests.join(name).join(format!("{name}.wasm")).exists());
        Ok(Bench {
            noop: ready("noop")?,
            transform: ready("transform")?,
            others: built
                .into_iter()
                .map(ready)
                .collect::<anyhow::Result<_>>()?,
            missing,
            sandbox,
            event: event.clone(),
            data: event.data.to_string(),
        })
    }

    /// One call of the trivial guest, which must answer "unchanged".
    pub async fn noop(&self, instance: Instance) -> anyhow::Result<()> {
        match self.invoke(&self.noop, instance).await? {
            None => Ok(()),
            Some(out) => bail!("noop returned data: {out}"),
        }
    }

    /// One call of the transform guest: its JSON.
    pub async fn transform(&self, instance: Instance) -> anyhow::Result<String> {
        self.invoke(&self.transform, instance)
            .await?
            .ok_or_else(|| anyhow!("transform returned no data"))
    }

    /// The other languages' transforms that are built, by name, in the
    /// order [`Bench::other`] takes them.
    pub fn others(&self) -> Vec<&'static str> {
        self.others.iter().map(|r| r.name).collect()
    }

    /// One call of the `i`th other transform: its JSON.
    pub async fn other(&self, i: usize, instance: Instance) -> anyhow::Result<String> {
        let ready = &self.others[i];
        self.invoke(ready, instance)
            .await?
            .ok_or_else(|| anyhow!("{} returned no data", ready.name))
    }

    /// Drops the instances the reused runs kept. An idle kept instance of a
    /// guest holds the pool slot its fresh instances would reuse warm, and
    /// measured them ~15% slower: each variant is measured on its own.
    pub fn drop_kept(&self) {
        self.sandbox
            .forget_hook(Uuid::nil(), hookd_model::UnixMillis::MAX);
    }

    async fn invoke(&self, ready: &Ready, instance: Instance) -> anyhow::Result<Option<String>> {
        let e = &self.event;
        self.sandbox
            .invoke(
                &ready.guest,
                &ready.grant,
                Invocation {
                    hook_id: Uuid::nil(),
                    guest_name: ready.name,
                    event_id: e.id,
                    source: &e.source,
                    event: &e.event,
                    data: self.data.clone(),
                    instance,
                },
            )
            .await
            .result
            .map_err(|failure| anyhow!("{}: {failure}", ready.name))
    }
}
