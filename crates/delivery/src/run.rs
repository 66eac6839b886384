//! Running a hook's handler for one event: in a delivery attempt, and
//! synchronously for `/event-hooks/{id}/test`. Both run the handler
//! [`handler::of`](crate::handler::of) picks the same way and differ only
//! in how they judge what it [`Handled`](crate::handler::Handled). A
//! delivery attempt does not look at the hook's condition: the dispatcher
//! did, when it queued the delivery.

use crate::condition;
use crate::handler::{self, AttemptId, Call, Handled, Outcome};
use crate::{Engine, TestAnswer};
use hookd_model::{Event, EventHook};
use serde_json::Value;
use uuid::Uuid;

/// Runs the hook's handler for a delivery attempt made at `now_ms`.
pub(crate) async fn handle(
    engine: &Engine,
    hook: &EventHook,
    event: &Event,
    delivery_id: Uuid,
    now_ms: i64,
) -> Outcome {
    let attempt = AttemptId {
        delivery_id,
        timestamp_s: now_ms / 1000,
        event,
    };
    run(engine, hook, &attempt).await.outcome()
}

/// Runs a hook's handler at once on `data`, outside the queue, and
/// answers Kong's `result`: for webhooks `{body, headers, status}`. A hook
/// with a condition has it evaluated on the data first, and its handler
/// runs only when it holds (the result is null otherwise).
pub(crate) async fn test(engine: &Engine, hook: &EventHook, data: Value) -> TestAnswer {
    let now_ms = engine.clock.now_ms();
    let event_name = hook.event.clone().unwrap_or_else(|| hook.source.clone());
    let event = Event::new(&hook.source, &event_name, data, now_ms);
    let condition = condition::evaluate(&engine.settings.templates, hook, &event).await;
    if condition.as_ref().is_some_and(|verdict| !verdict.held()) {
        return TestAnswer {
            condition,
            result: Ok(Value::Null),
        };
    }
    let attempt = AttemptId {
        delivery_id: Uuid::new_v4(),
        timestamp_s: now_ms / 1000,
        event: &event,
    };
    TestAnswer {
        condition,
        result: run(engine, hook, &attempt).await.test_answer(),
    }
}

/// What the hook's handler did with `attempt`'s event.
async fn run(engine: &Engine, hook: &EventHook, attempt: &AttemptId<'_>) -> Handled {
    let call = Call {
        engine,
        hook_id: hook.id,
        attempt,
    };
    handler::of(&hook.handler).handle(call).await
}
