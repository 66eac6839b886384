//! A lambda hook's `functions`, run in order.

use crate::{
    AuditRecord, Failure, GuestRef, Instance, Invocation, OutputStats, Sandbox, UntrustedWasm,
};
use hookd_model::Event;
use hookd_model::hook::{InstanceMode, LambdaConfig};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;
use uuid::Uuid;

/// An error of the caller's guest storage.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// Where the chain runner finds guests; keeps the sandbox free of the
/// store.
#[async_trait::async_trait]
pub trait GuestSource: Sync {
    /// The guest a function of the hook names (a name or a digest).
    async fn resolve(&self, function: &str) -> Result<GuestRef, SourceError>;
    /// The guest's bytes; asked for only when it is not prepared yet.
    async fn bytes(&self, guest: &GuestRef) -> Result<Vec<u8>, SourceError>;
}

/// One function of the chain, as it ran.
#[derive(Debug)]
pub struct Step {
    /// The function as the hook names it.
    pub function: String,
    /// The guest it resolved to, if it did.
    pub guest: Option<GuestRef>,
    /// Whether it returned new data (rather than passing its input on).
    pub changed: bool,
    /// Why it failed, if it did (the chain stopped there).
    pub failure: Option<Failure>,
    /// How much it wrote.
    pub output: OutputStats,
    /// Its wall time.
    pub elapsed: Duration,
    /// Whether it ran on an instance kept from the hook's earlier events.
    pub reused: bool,
}

/// The function that stopped a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("function {} ('{function}') of the chain: {failure}", step + 1)]
pub struct ChainFailure {
    /// Its position, zero-based.
    pub step: usize,
    /// The function as the hook names it.
    pub function: String,
    /// Why.
    pub failure: Failure,
}

/// What a chain produced.
#[derive(Debug)]
pub struct ChainOutcome {
    /// The last data (JSON), or the failure that stopped the chain.
    pub result: Result<String, ChainFailure>,
    /// Each function that ran, or was tried.
    pub steps: Vec<Step>,
    /// The audit records of every step, in order.
    pub audit: Vec<AuditRecord>,
}

impl Sandbox {
    /// Runs `lambda.functions` on `event`: each output is the next input,
    /// `None` passes the input on unchanged, the first failure stops the
    /// chain. Guests not prepared yet are compiled (or loaded from the
    /// cache) on a blocking thread. With `instance = "reused"` each guest
    /// runs on an instance kept for this hook and this configuration.
    pub async fn run_chain(
        &self,
        hook_id: Uuid,
        lambda: &LambdaConfig,
        event: &Event,
        source: &dyn GuestSource,
    ) -> ChainOutcome {
        let version = match lambda.instance {
            InstanceMode::PerEvent => None,
            InstanceMode::Reused => Some(version_of(lambda)),
        };
        let mut data = event.data.to_string();
        let mut out = ChainOutcome {
            result: Ok(String::new()),
            steps: Vec::new(),
            audit: Vec::new(),
        };
        for (i, function) in lambda.functions.iter().enumerate() {
            let stop = |failure| ChainFailure {
                step: i,
                function: function.clone(),
                failure,
            };
            if self.inner.config.mode == UntrustedWasm::Off {
                out.result = Err(stop(Failure::Disabled));
                return out;
            }
            let mut step = Step {
                function: function.clone(),
                guest: None,
                changed: false,
                failure: None,
                output: OutputStats::default(),
                elapsed: Duration::ZERO,
                reused: false,
            };
            let guest = match self.load(function, source).await {
                Ok((guest_ref, guest)) => {
                    step.guest = Some(guest_ref);
                    guest
                }
                Err(failure) => {
                    step.failure = Some(failure.clone());
                    out.steps.push(step);
                    out.result = Err(stop(failure));
                    return out;
                }
            };
            let grant = self.grant(lambda, guest.report());
            let name = step
                .guest
                .as_ref()
                .map_or(function.as_str(), |g| g.name.as_str());
            let outcome = self
                .invoke(
                    &guest,
                    &grant,
                    Invocation {
                        hook_id,
                        guest_name: name,
                        event_id: event.id,
                        source: &event.source,
                        event: &event.event,
                        data: data.clone(),
                        instance: version.map_or(Instance::Fresh, |version| Instance::Reused {
                            version,
                            step: i,
                        }),
                    },
                )
                .await;
            out.audit.extend(outcome.audit);
            step.output = outcome.output;
            step.elapsed = outcome.elapsed;
            step.reused = outcome.reused;
            match outcome.result {
                Ok(Some(new)) => {
                    data = new;
                    step.changed = true;
                }
                Ok(None) => {}
                Err(failure) => {
                    step.failure = Some(failure.clone());
                    out.steps.push(step);
                    out.result = Err(stop(failure));
                    return out;
                }
            }
            out.steps.push(step);
        }
        out.result = Ok(data);
        out
    }

    async fn load(
        &self,
        function: &str,
        source: &dyn GuestSource,
    ) -> Result<(GuestRef, std::sync::Arc<crate::Guest>), Failure> {
        let unavailable =
            |e: &dyn std::fmt::Display| Failure::Host(format!("guest '{function}': {e}"));
        let guest_ref = source
            .resolve(function)
            .await
            .map_err(|e| unavailable(&e))?;
        if let Some(guest) = self.prepared(&guest_ref.digest) {
            return Ok((guest_ref, guest));
        }
        let bytes = source
            .bytes(&guest_ref)
            .await
            .map_err(|e| unavailable(&e))?;
        let sandbox = self.clone();
        let guest = tokio::task::spawn_blocking(move || sandbox.prepare(&bytes))
            .await
            .map_err(|e| unavailable(&e))?
            .map_err(|e| unavailable(&e))?;
        if guest.digest() != guest_ref.digest {
            return Err(unavailable(&"its stored bytes do not match its digest"));
        }
        Ok((guest_ref, guest))
    }
}

/// Stands for a hook's lambda configuration, so that a kept instance
/// serves only the configuration it was made for.
fn version_of(lambda: &LambdaConfig) -> u64 {
    let mut hasher = DefaultHasher::new();
    lambda.hash(&mut hasher);
    hasher.finish()
}
