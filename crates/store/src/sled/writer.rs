//! Entity writes in batches: one sled transaction for every write pending.
//!
//! A sled 0.34 transaction takes a process-wide write lock and writes out
//! the log buffer before and after itself, about 250 µs on this machine
//! whatever it holds, so one transaction per API write caps the Admin API
//! at a few thousand writes per second. Here one thread takes every write
//! waiting, applies them in order in a single transaction (each sees the
//! ones before it), undoes alone each one that fails, and answers each.

use super::entities::Tx;
use crate::{Error, Result};
use serde_json::Value;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use std::sync::{Mutex, mpsc};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Writes taken into one transaction, at most: bounds the time a write
/// waits behind the others.
const MAX_BATCH: usize = 256;

/// The views a transaction over the entity trees gives: entities, unique,
/// children, outbox, admin tokens (an admin's tokens die in the
/// transaction that deletes it).
pub(crate) type TxTrees = (
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
);

/// One entity write: reads and writes through the [`Tx`], answers a
/// value, or aborts with the error its caller gets.
pub(crate) type Write =
    Box<dyn Fn(&Tx<'_>) -> std::result::Result<Value, ConflictableTransactionError<Error>> + Send>;

struct Request {
    at_ms: i64,
    write: Write,
    answer: oneshot::Sender<Result<Value>>,
}

/// Handle on the writer thread.
pub(crate) struct Writer {
    /// None once stopped.
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the thread that writes to these trees: entities, unique,
    /// children, outbox, admin tokens.
    pub(crate) fn start(trees: [sled::Tree; 5]) -> Self {
        let (requests, pending) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("hookd-writer".into())
            .spawn(move || run(&trees, &pending))
            .expect("spawning the writer thread");
        Writer {
            requests: Mutex::new(Some(requests)),
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Applies `write` in the next transaction; committed, not yet durable.
    pub(crate) async fn write(&self, at_ms: i64, write: Write) -> Result<Value> {
        let (answer, answered) = oneshot::channel();
        let request = Request {
            at_ms,
            write,
            answer,
        };
        lock(&self.requests)
            .as_ref()
            .ok_or(Error::Stopped)?
            .send(request)
            .map_err(|_| Error::Stopped)?;
        answered.await.map_err(|_| Error::Stopped)?
    }

    /// Applies the writes already sent and ends the thread, which lets go
    /// of the trees: the database can be opened again once this returns.
    pub(crate) fn stop(&self) {
        lock(&self.requests).take();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(trees: &[sled::Tree; 5], pending: &mpsc::Receiver<Request>) {
    use sled::Transactional;
    let [entities, unique, children, outbox, tokens] = trees;
    while let Ok(first) = pending.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let committed = (entities, unique, children, outbox, tokens).transaction(|views| {
            let mut answers = Vec::with_capacity(batch.len());
            for request in &batch {
                let tx = Tx::new(views, request.at_ms);
                match (request.write)(&tx) {
                    Ok(value) => answers.push(Ok(value)),
                    Err(ConflictableTransactionError::Abort(e)) => {
                        tx.undo()?;
                        answers.push(Err(e));
                    }
                    // A conflict reruns the whole batch; storage fails it.
                    Err(other) => return Err(other),
                }
            }
            Ok(answers)
        });
        match committed {
            Ok(answers) => {
                for (request, answer) in batch.into_iter().zip(answers) {
                    let _ = request.answer.send(answer);
                }
            }
            Err(e) => {
                let e = match e {
                    TransactionError::Storage(e) => e,
                    // Never aborted as a whole: each write's abort is its own.
                    TransactionError::Abort(e) => sled::Error::ReportableBug(e.to_string()),
                };
                tracing::error!(error = %e, "an entity transaction failed");
                for request in batch {
                    let _ = request.answer.send(Err(Error::Sled(e.clone())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn insert(
        at_ms: i64,
        entity: &'static str,
        value: Value,
    ) -> (Request, oneshot::Receiver<Result<Value>>) {
        let (answer, answered) = oneshot::channel();
        let id = value["id"].as_str().unwrap().parse().unwrap();
        let write: Write = Box::new(move |tx| tx.insert(entity, id, &value).map(|()| Value::Null));
        let request = Request {
            at_ms,
            write,
            answer,
        };
        (request, answered)
    }

    #[test]
    fn a_failed_write_is_undone_alone_in_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let trees = ["entities", "unique", "children", "outbox", "admin_tokens"]
            .map(|t| db.open_tree(t).unwrap());
        let alice = json!({ "id": Uuid::new_v4(), "username": "alice" });
        // Claims its unique name, then fails on the service that is not there.
        let dangling = json!({
            "id": Uuid::new_v4(),
            "name": "orphan",
            "service": { "id": Uuid::new_v4() },
        });
        let bob = json!({ "id": Uuid::new_v4(), "username": "bob" });
        let (requests, pending) = mpsc::channel();
        let mut answers = Vec::new();
        for (at_ms, entity, value) in [
            (1, "consumers", alice),
            (2, "routes", dangling),
            (3, "consumers", bob),
        ] {
            let (request, answered) = insert(at_ms, entity, value);
            requests.send(request).unwrap();
            answers.push(answered);
        }
        drop(requests);
        // All three are pending when the writer starts: one batch.
        run(&trees, &pending);

        let answers: Vec<_> = answers
            .into_iter()
            .map(|a| a.blocking_recv().unwrap())
            .collect();
        assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
        assert!(
            matches!(answers[1], Err(Error::ForeignKey { .. })),
            "{answers:?}"
        );
        let [entities, unique, children, outbox, _] = &trees;
        assert_eq!(entities.len(), 2, "the failed insert left its entity");
        assert_eq!(unique.len(), 2, "the failed insert kept its name");
        assert!(children.is_empty());
        // A record of three crud events for each consumer, in write order,
        // none for the failed route.
        let times: Vec<Vec<i64>> = outbox
            .iter()
            .values()
            .map(|v| crate::codec::decode::<Vec<hookd_model::Event>>(&v.unwrap()).unwrap())
            .map(|record| record.iter().map(|e| e.at_ms).collect())
            .collect();
        assert_eq!(times, [[1, 1, 1], [3, 3, 3]]);
    }
}
