//! A hook's `condition`: a minijinja expression over the event data that
//! decides whether the hook takes an event. It reads what a webhook-custom
//! template reads ([`Event::payload`]: the data's members, `event` and
//! `source`) and is checked and evaluated by the template box
//! ([`hookd_template`]) within the templates' limits, never in the server.
//!
//! A condition that errs, goes over a limit or gets no answer from the
//! box counts as false for that event and that hook: logged with the hook
//! and counted in `hookd_conditions_total{outcome="failed"}`. Hooks without
//! a condition cost nothing here.

use crate::Engine;
use futures::future::join_all;
use hookd_metrics::ConditionLabels;
use hookd_model::violation::Violations;
use hookd_model::{Event, EventHook};
use hookd_template::{Failure, PoolError, Renderer};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

/// What became of a hook's condition on one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It is true for the event.
    Held,
    /// It is false for the event.
    NotHeld,
    /// It could not be evaluated (an error, a limit, no answer from the
    /// box), which counts as false: why.
    Failed(String),
}

impl Verdict {
    /// What the box's answer comes to.
    fn of(answer: Result<Result<bool, Failure>, PoolError>) -> Verdict {
        match answer {
            Ok(Ok(true)) => Verdict::Held,
            Ok(Ok(false)) => Verdict::NotHeld,
            Ok(Err(failure)) => Verdict::Failed(failure.message),
            Err(e) => Verdict::Failed(e.to_string()),
        }
    }

    /// Whether the hook takes the event.
    pub fn held(&self) -> bool {
        *self == Verdict::Held
    }

    /// Its label in `hookd_conditions_total`.
    fn outcome(&self) -> &'static str {
        match self {
            Verdict::Held => "held",
            Verdict::NotHeld => "not_held",
            Verdict::Failed(_) => "failed",
        }
    }
}

/// Checks a hook's condition when the hook is saved: it compiles as an
/// expression within [`hookd_template::MAX_CONDITION`], and it is within
/// its budget without any event data (evaluated once in the box, as
/// webhook-custom templates are). Only limits refuse at the trial: a
/// condition that merely errs without data may well hold with it; when
/// the box cannot answer (no worker free) the save goes ahead, since
/// evaluations are bounded anyway.
pub(crate) async fn check(hook: &EventHook, renderer: &Renderer) -> Result<(), Violations> {
    let Some(condition) = hook.condition.as_deref() else {
        return Ok(());
    };
    if let Err(message) = hookd_template::compile_condition(condition) {
        return Err(refused(format!("invalid condition: {message}")));
    }
    match renderer.evaluate(condition, &json!({})).await {
        Ok(Err(failure)) if failure.over_budget => Err(refused(format!(
            "over its budget without any event data: {failure}"
        ))),
        Err(e @ (PoolError::Timeout { .. } | PoolError::Memory { .. })) => Err(refused(format!(
            "over its budget without any event data: {e}"
        ))),
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(hook = %hook.id, error = %e, "condition saved without a trial evaluation");
            Ok(())
        }
    }
}

fn refused(message: String) -> Violations {
    Violations::field("condition", message)
}

/// Evaluates `hook`'s condition, if it has one, on `event` in the box.
pub(crate) async fn evaluate(
    renderer: &Renderer,
    hook: &EventHook,
    event: &Event,
) -> Option<Verdict> {
    let condition = hook.condition.as_deref()?;
    Some(Verdict::of(
        renderer.evaluate(condition, &event.payload()).await,
    ))
}

/// Whether a failure of the box took (or would take again) a whole
/// deadline: the evaluation ran out of time, or waited for a worker as
/// long as it may.
fn stalls(error: &PoolError) -> bool {
    matches!(error, PoolError::Timeout { .. } | PoolError::Busy { .. })
}

/// The (event, hook) pairs of a batch whose hook has a condition that did
/// not hold for the event; events are named by their place in the batch.
#[derive(Debug, Default)]
pub(crate) struct Refusals(HashSet<(usize, Uuid)>);

impl Refusals {
    /// Whether `hook`'s condition (if it has one) let the batch's event at
    /// `index` through.
    pub(crate) fn admit(&self, index: usize, hook: Uuid) -> bool {
        !self.0.contains(&(index, hook))
    }
}

/// Evaluates the condition of every hook that has one on each event of
/// the batch it matches, before any event is routed.
///
/// Hooks are evaluated concurrently, within the box's workers; a hook's
/// events one after another, so one hook holds at most one worker. When
/// the box stalls on a hook's condition (a deadline ran out, or no worker
/// was free within the queue timeout), that hook's remaining events of the
/// batch count as false without being tried, each of which could stall as
/// long again: a batch waits at most about one deadline per hook.
pub(crate) async fn judge(
    engine: &Engine,
    hooks: &[Arc<EventHook>],
    events: &[(u64, Event)],
) -> Refusals {
    let conditioned: Vec<(&EventHook, &str)> = hooks
        .iter()
        .filter(|h| h.enabled)
        .filter_map(|h| Some((h.as_ref(), h.condition.as_deref()?)))
        .collect();
    if conditioned.is_empty() {
        return Refusals::default();
    }
    // Each event's context is built once, and only for events that a
    // conditioned hook takes.
    let contexts: Vec<Option<Value>> = events
        .iter()
        .map(|(_, e)| {
            conditioned
                .iter()
                .any(|(h, _)| h.matches(&e.source, &e.event))
                .then(|| e.payload())
        })
        .collect();
    let judged = conditioned
        .into_iter()
        .map(|(hook, condition)| judge_hook(engine, hook, condition, events, &contexts));
    Refusals(join_all(judged).await.into_iter().flatten().collect())
}

/// The batch's events that `hook` matches and its condition refuses.
async fn judge_hook(
    engine: &Engine,
    hook: &EventHook,
    condition: &str,
    events: &[(u64, Event)],
    contexts: &[Option<Value>],
) -> Vec<(usize, Uuid)> {
    let renderer = &engine.settings.templates;
    let mut refused = Vec::new();
    let mut stalled: Option<String> = None;
    for (index, ((_, event), context)) in events.iter().zip(contexts).enumerate() {
        let Some(context) = context
            .as_ref()
            .filter(|_| hook.matches(&event.source, &event.event))
        else {
            continue;
        };
        let verdict = match &stalled {
            Some(why) => Verdict::Failed(format!("not evaluated: {why}")),
            None => {
                let answer = renderer.evaluate(condition, context).await;
                if let Err(e) = &answer
                    && stalls(e)
                {
                    stalled = Some(e.to_string());
                }
                Verdict::of(answer)
            }
        };
        record(engine, hook.id, event, &verdict);
        if !verdict.held() {
            refused.push((index, hook.id));
        }
    }
    refused
}

/// Logs and counts a verdict of the dispatcher.
fn record(engine: &Engine, hook: Uuid, event: &Event, verdict: &Verdict) {
    engine
        .metrics
        .conditions
        .get_or_create(&ConditionLabels {
            outcome: verdict.outcome(),
        })
        .inc();
    match verdict {
        Verdict::Held => {}
        Verdict::NotHeld => {
            tracing::debug!(hook = %hook, event = %event.id, "event dropped by the hook's condition")
        }
        Verdict::Failed(error) => tracing::warn!(
            hook = %hook, event = %event.id, error = %error,
            "the hook's condition failed; the event counts as not taken"
        ),
    }
}
