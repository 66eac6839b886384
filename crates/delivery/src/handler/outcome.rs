//! What a handler did with one event, and what that comes to: an attempt
//! as the workers record and schedule it, or the answer of `/test`.

use super::{HandlerError, Response, RetryAfter};
use hookd_model::delivery::Attempt;
use serde_json::{Value, json};

/// What a handler did with one event.
#[derive(Debug)]
pub(crate) enum Handled {
    /// It sent a request (webhook, webhook-custom): delivered on a 2xx
    /// answer only; `/test` shows the answer as Kong does, whatever its
    /// status.
    Sent(Result<Response, HandlerError>),
    /// It finished, with its result if it has one (a chain's final data):
    /// delivered, and `/test` shows the result (null for none).
    Done(Option<Value>),
    /// It failed before anything was delivered: the attempt records
    /// `error`, `/test` answers `test`.
    Failed {
        /// Why, as the attempt records it.
        error: String,
        /// Why, as `/test` tells it.
        test: TestFailure,
    },
}

impl Handled {
    /// What this comes to as a delivery attempt.
    pub(crate) fn outcome(self) -> Outcome {
        match self {
            Handled::Sent(sent) => Outcome::of_request(sent),
            Handled::Done(result) => Outcome::Delivered {
                answer: None,
                result,
            },
            Handled::Failed { error, .. } => Outcome::failed(error),
        }
    }

    /// Kong's `result` of `/test`, or why there is none.
    pub(crate) fn test_answer(self) -> Result<Value, TestFailure> {
        match self {
            Handled::Sent(sent) => {
                let response =
                    sent.map_err(|e| TestFailure::Unexpected(hookd_model::error_chain(&e)))?;
                Ok(json!({
                    "body": response.body,
                    "headers": response.headers,
                    "status": response.status,
                }))
            }
            Handled::Done(result) => Ok(result.unwrap_or(Value::Null)),
            Handled::Failed { test, .. } => Err(test),
        }
    }
}

/// What one attempt came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The receiver answered 2xx, the event was logged, or the chain of
    /// guests returned its result.
    Delivered {
        /// What the receiver answered, for the webhook handlers.
        answer: Option<Answer>,
        /// The chain's final data, for lambda hooks.
        result: Option<Value>,
    },
    /// Not delivered: tried again on the schedule.
    Failed {
        /// Why, as the attempt records it.
        error: String,
        /// What the receiver answered, when it answered.
        answer: Option<Answer>,
        /// When the receiver asked to be tried again.
        retry_after: Option<RetryAfter>,
    },
    /// The hook was deleted: trying again cannot help, the delivery dies.
    HookGone,
}

/// What a receiver answered, as an attempt keeps it.
#[derive(Debug)]
pub(crate) struct Answer {
    status: u16,
    /// The start of the body ([`Response::excerpt`]).
    excerpt: String,
}

impl Outcome {
    /// Why an attempt failed before any handler ran.
    pub(crate) fn failed(error: String) -> Outcome {
        Outcome::Failed {
            error,
            answer: None,
            retry_after: None,
        }
    }

    /// The outcome of sending a request: delivered on a 2xx answer only.
    fn of_request(sent: Result<Response, HandlerError>) -> Outcome {
        let response = match sent {
            Ok(response) => response,
            Err(e) => return Outcome::failed(hookd_model::error_chain(&e)),
        };
        let answer = Answer {
            status: response.status,
            excerpt: response.excerpt(),
        };
        if response.is_success() {
            Outcome::Delivered {
                answer: Some(answer),
                result: None,
            }
        } else {
            Outcome::Failed {
                error: format!("the receiver answered {}", response.status),
                answer: Some(answer),
                retry_after: response.retry_after,
            }
        }
    }

    /// Whether the event got where it was going.
    pub(crate) fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered { .. })
    }

    /// The attempt record of this outcome.
    pub(crate) fn into_attempt(self, number: u32, at_ms: i64, latency_ms: u64) -> Attempt {
        let ok = self.is_delivered();
        let (answer, error, result) = match self {
            Outcome::Delivered { answer, result } => (answer, None, result),
            Outcome::Failed { error, answer, .. } => (answer, Some(error), None),
            Outcome::HookGone => (None, Some(HOOK_GONE.to_string()), None),
        };
        let (status, response) = answer.map(|a| (a.status, a.excerpt)).unzip();
        Attempt {
            number,
            at_ms,
            latency_ms,
            ok,
            status,
            error,
            response,
            result,
        }
    }
}

/// What an attempt of a deleted hook's delivery records.
const HOOK_GONE: &str = "the event hook no longer exists";

/// Why `/event-hooks/{id}/test` shows no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TestFailure {
    /// A guest of the chain returned its own error: it refused the data,
    /// on purpose, with this message.
    #[error("function {} ('{function}') of the chain returned an error: {message}", step + 1)]
    GuestError {
        /// Its place in the chain, zero-based.
        step: usize,
        /// The function as the hook names it.
        function: String,
        /// The guest's message.
        message: String,
    },
    /// Anything else: a trap, a limit, an unreachable target, a guest
    /// that is missing.
    #[error("{0}")]
    Unexpected(String),
}
