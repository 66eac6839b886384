//! The lambda handler: a hook's chain of guests, run in the sandbox with
//! guests from the store, and the checks of a lambda hook when it is saved.

use super::{Call, Handled, HookHandler, TestFailure};
use crate::Engine;
use futures::future::{BoxFuture, FutureExt};
use hookd_metrics::{CapabilityLabels, InvocationLabels};
use hookd_model::hook::{LambdaConfig, pinned_digest};
use hookd_model::nesting::{JsonRefusal, parse_json};
use hookd_model::violation::PathSeg;
use hookd_model::{Event, Violations};
use hookd_sandbox::{
    ChainFailure, Failure, GuestRef, GuestReport, GuestSource, SourceError, Verdict,
};
use hookd_store::Store;
use serde_json::Value;
use uuid::Uuid;

/// The `lambda` handler.
impl HookHandler for LambdaConfig {
    /// The mode and the ceiling admit what the hook asks for, and every
    /// function names a guest that exists.
    fn check<'a>(&'a self, engine: &'a Engine) -> BoxFuture<'a, Result<(), Violations>> {
        check(engine, self).boxed()
    }

    fn handle<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Handled> {
        run(call.engine, call.hook_id, self, call.attempt.event)
            .map(|ran| match ran {
                Ok(data) => Handled::Done(Some(data)),
                Err(error) => Handled::Failed {
                    error: error.to_string(),
                    test: match error {
                        RunError::Chain(ChainFailure {
                            step,
                            function,
                            failure: Failure::GuestError(message),
                        }) => TestFailure::GuestError {
                            step,
                            function,
                            message,
                        },
                        other => TestFailure::Unexpected(other.to_string()),
                    },
                },
            })
            .boxed()
    }
}

/// Guests as the store keeps them: a function names a guest, or pins the
/// digest of one version (`sha256:<hex>` or bare hex).
pub(crate) struct StoreGuests<'a>(pub &'a Store);

impl StoreGuests<'_> {
    /// The guest a function names, and what its bytes are.
    pub(crate) async fn lookup(&self, function: &str) -> Result<(GuestRef, Value), SourceError> {
        if let Some(digest) = pinned_digest(function) {
            let version = self
                .0
                .guest_version(&digest)
                .await?
                .ok_or_else(|| format!("no guest has the digest {digest}"))?;
            let name = version["names"][0].as_str().unwrap_or(function).to_string();
            let digest = version["digest"].as_str().unwrap_or(&digest).to_string();
            return Ok((GuestRef { name, digest }, version));
        }
        let record = self
            .0
            .guest(function)
            .await?
            .ok_or_else(|| format!("guest '{function}' does not exist"))?;
        let digest = record["digest"].as_str().unwrap_or_default().to_string();
        Ok((
            GuestRef {
                name: function.to_string(),
                digest,
            },
            record,
        ))
    }
}

#[async_trait::async_trait]
impl GuestSource for StoreGuests<'_> {
    async fn resolve(&self, function: &str) -> Result<GuestRef, SourceError> {
        self.lookup(function).await.map(|(guest, _)| guest)
    }

    async fn bytes(&self, guest: &GuestRef) -> Result<Vec<u8>, SourceError> {
        Ok(self
            .0
            .guest_bytes(&guest.digest)
            .await?
            .ok_or_else(|| format!("the bytes of guest '{}' are missing", guest.name))?)
    }
}

/// Why a chain gave no data to record.
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// A function of the chain failed.
    #[error(transparent)]
    Chain(ChainFailure),
    /// The chain's output cannot be recorded.
    #[error("{0}")]
    Result(String),
}

/// Runs the chain on the event; the final data, or why it failed. Every
/// checked decision goes to the audit log.
async fn run(
    engine: &Engine,
    hook_id: Uuid,
    lambda: &LambdaConfig,
    event: &Event,
) -> Result<Value, RunError> {
    let outcome = engine
        .sandbox
        .run_chain(hook_id, lambda, event, &StoreGuests(&engine.store))
        .await;
    if let Err(e) = engine.store.append_audit(&outcome.audit).await {
        tracing::error!(error = %e, hook = %hook_id, "recording audit decisions failed");
    }
    let m = &engine.metrics;
    for step in &outcome.steps {
        let outcome = step.failure.as_ref().map_or("ok", failure_kind);
        m.lambda_invocations
            .get_or_create(&InvocationLabels {
                outcome: outcome.into(),
            })
            .inc();
    }
    for denial in outcome
        .audit
        .iter()
        .filter(|a| a.verdict == Verdict::Denied)
    {
        m.audit_denials
            .get_or_create(&CapabilityLabels {
                capability: denial.capability.as_str().into(),
            })
            .inc_by(denial.count);
    }
    let data = outcome.result.map_err(RunError::Chain)?;
    chain_result(&data).map_err(RunError::Result)
}

/// The chain's output as the value an attempt records: JSON no deeper than
/// a delivery record can hold and read back, or this attempt's failure.
fn chain_result(output: &str) -> Result<Value, String> {
    let deepest = hookd_store::codec::MAX_VALUE_DEPTH;
    parse_json(output.as_bytes(), deepest).map_err(|refusal| match refusal {
        JsonRefusal::Syntax(e) => format!("the chain's result is not JSON: {e}"),
        JsonRefusal::TooDeep(_) => {
            format!("the chain's result nests deeper than {deepest} levels of objects and arrays")
        }
    })
}

/// The metric label of how an invocation failed.
fn failure_kind(f: &Failure) -> &'static str {
    match f {
        Failure::Disabled => "disabled",
        Failure::GuestError(_) => "error",
        Failure::Timeout(_) => "timeout",
        Failure::MemoryLimit(_) => "memory",
        Failure::FuelExhausted(_) => "fuel",
        Failure::StackOverflow => "stack_overflow",
        Failure::Trap(_) => "trap",
        Failure::OutputTooLarge { .. } => "output_too_large",
        Failure::Host(_) => "host",
    }
}

/// Checks a lambda hook at save time: the mode and the ceiling admit what
/// it asks for, and every function names a guest that exists.
async fn check(engine: &Engine, lambda: &LambdaConfig) -> Result<(), Violations> {
    let mut violations = match engine.sandbox.check_lambda(lambda) {
        Ok(()) => Violations::new(),
        Err(v) => v,
    };
    let guests = StoreGuests(&engine.store);
    for (i, function) in lambda.functions.iter().enumerate() {
        if let Err(e) = guests.lookup(function).await {
            violations.push(
                vec![
                    PathSeg::Key("config".into()),
                    PathSeg::Key("functions".into()),
                    PathSeg::Index(i),
                ],
                e.to_string(),
            );
        }
    }
    violations.into_result(())
}

/// What each guest of a lambda hook is granted under the server's mode
/// and ceiling: `[{function, guest, grant}]`.
pub(crate) async fn grants(engine: &Engine, lambda: &LambdaConfig) -> Vec<Value> {
    let guests = StoreGuests(&engine.store);
    let mut grants = Vec::with_capacity(lambda.functions.len());
    for function in &lambda.functions {
        grants.push(match guests.lookup(function).await {
            Ok((guest, described)) => match serde_json::from_value::<GuestReport>(described) {
                Ok(report) => serde_json::json!({
                    "function": function,
                    "guest": guest,
                    "grant": engine.sandbox.grant(lambda, &report),
                    "instance": report.kind.instance(lambda.instance),
                }),
                Err(e) => serde_json::json!({"function": function, "guest": guest,
                                             "error": format!("the stored report does not decode: {e}")}),
            },
            Err(e) => serde_json::json!({"function": function, "error": e.to_string()}),
        });
    }
    grants
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_too_deep_to_record_fail_the_attempt() {
        let nested = |levels: usize| "[".repeat(levels) + &"]".repeat(levels);
        let deepest = hookd_store::codec::MAX_VALUE_DEPTH;
        assert!(chain_result(&nested(deepest)).is_ok());
        assert_eq!(
            chain_result(&nested(deepest + 1)).unwrap_err(),
            "the chain's result nests deeper than 124 levels of objects and arrays"
        );
        assert!(
            chain_result("{")
                .unwrap_err()
                .starts_with("the chain's result is not JSON")
        );
    }
}
