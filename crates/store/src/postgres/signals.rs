//! News between the nodes of one database, by `LISTEN`/`NOTIFY`: events
//! added to the outbox (the dispatching node wakes), deliveries made due
//! for another node's shards (its scheduler looks), and hooks written
//! (every node reads its hooks again). Each node wakes its own waiters
//! at once and announces to the others from one task, after the write
//! has committed: a `NOTIFY` inside the write's transaction would make
//! every writing transaction queue for PostgreSQL's notification lock.
//! Notifications are hints: a node that missed some (its listening
//! connection was lost) acts as if everything changed.

use crate::cluster::HookChange;
use sqlx::postgres::{PgListener, PgPool};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;
use uuid::Uuid;

const OUTBOX: &str = "hookd_outbox";
const DUE: &str = "hookd_due";
const HOOKS: &str = "hookd_hooks";

/// How long a lost listening connection waits before it connects again.
const RECONNECT: Duration = Duration::from_secs(1);

/// Hook changes held for a slow listener before it hears `Unknown`.
const HOOK_BACKLOG: usize = 1024;

/// The wake-ups of one node, and what it has still to announce.
pub(super) struct Signals {
    /// Events were added to the outbox, here or on another node.
    pub(super) outbox: Notify,
    /// Another node made deliveries due.
    pub(super) due: Notify,
    /// Hooks written through other nodes.
    pub(super) hooks: broadcast::Sender<HookChange>,
    pending: Mutex<Pending>,
    announce: Notify,
}

#[derive(Default)]
struct Pending {
    outbox: bool,
    due: bool,
    hooks: Vec<String>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        !self.outbox && !self.due && self.hooks.is_empty()
    }
}

impl Signals {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Signals {
            outbox: Notify::new(),
            due: Notify::new(),
            hooks: broadcast::channel(HOOK_BACKLOG).0,
            pending: Mutex::new(Pending::default()),
            announce: Notify::new(),
        })
    }

    fn pending(&self, change: impl FnOnce(&mut Pending)) {
        change(&mut self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        self.announce.notify_one();
    }

    /// Events were added to the outbox by this node.
    pub(super) fn outbox_written(&self) {
        self.outbox.notify_one();
        self.pending(|p| p.outbox = true);
    }

    /// This node made deliveries due that another node may attempt.
    pub(super) fn due_written(&self) {
        self.pending(|p| p.due = true);
    }

    /// This node wrote a hook.
    pub(super) fn hook_written(&self, hook: Uuid, at_ms: i64, begun_or_ended: bool) {
        let kind = if begun_or_ended { "new" } else { "changed" };
        self.pending(|p| p.hooks.push(format!("{hook} {at_ms} {kind}")));
    }

    /// Everything may have changed: notifications were missed.
    fn missed(&self) {
        self.outbox.notify_one();
        self.due.notify_one();
        let _ = self.hooks.send(HookChange::Unknown);
    }

    /// Takes in a notification of another node's (`payload` is its id,
    /// a space, and what the channel says).
    fn heard(&self, channel: &str, payload: &str, me: &str) {
        let Some((from, said)) = payload.split_once(' ') else {
            return;
        };
        if from == me {
            return;
        }
        match channel {
            OUTBOX => self.outbox.notify_one(),
            DUE => self.due.notify_one(),
            HOOKS => {
                let change = parse_hook_change(said).unwrap_or(HookChange::Unknown);
                let _ = self.hooks.send(change);
            }
            _ => {}
        }
    }
}

fn parse_hook_change(said: &str) -> Option<HookChange> {
    let mut parts = said.split(' ');
    let hook = Uuid::try_parse(parts.next()?).ok()?;
    let at_ms = parts.next()?.parse().ok()?;
    let begun_or_ended = parts.next()? == "new";
    Some(HookChange::Written {
        hook,
        at_ms,
        begun_or_ended,
    })
}

/// Starts the node's announcer (on `pool`) and listener (on `listening`,
/// a pool of its own): both run until aborted.
pub(super) fn spawn(
    signals: &Arc<Signals>,
    pool: PgPool,
    listening: PgPool,
    node: Uuid,
) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(announce(Arc::clone(signals), pool, node)),
        tokio::spawn(listen(Arc::clone(signals), listening, node)),
    ]
}

async fn announce(signals: Arc<Signals>, pool: PgPool, node: Uuid) {
    loop {
        signals.announce.notified().await;
        let pending = std::mem::take(
            &mut *signals
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if pending.is_empty() {
            continue;
        }
        let mut channels = Vec::new();
        let mut payloads = Vec::new();
        let mut say = |channel: &str, said: &str| {
            channels.push(channel.to_string());
            payloads.push(format!("{node} {said}"));
        };
        if pending.outbox {
            say(OUTBOX, "");
        }
        if pending.due {
            say(DUE, "");
        }
        for hook in &pending.hooks {
            say(HOOKS, hook);
        }
        if let Err(e) =
            sqlx::query("SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS n(c, p)")
                .bind(&channels)
                .bind(&payloads)
                .execute(&pool)
                .await
        {
            // Other nodes look on their own within a second; hook news
            // lost here is the one thing they would not see, so log it.
            tracing::warn!(error = %e, hooks = pending.hooks.len(), "telling the other nodes failed");
        }
    }
}

async fn listen(signals: Arc<Signals>, listening: PgPool, node: Uuid) {
    let me = node.to_string();
    loop {
        match PgListener::connect_with(&listening).await {
            Ok(mut listener) => match listener.listen_all([OUTBOX, DUE, HOOKS]).await {
                Ok(()) => {
                    // Whatever was said before now went unheard.
                    signals.missed();
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(n)) => signals.heard(n.channel(), n.payload(), &me),
                            // Reconnected, having missed what was said.
                            Ok(None) => signals.missed(),
                            Err(e) => {
                                tracing::warn!(error = %e, "listening to the other nodes failed");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "listening to the other nodes failed"),
            },
            Err(e) => tracing::warn!(error = %e, "connecting to hear the other nodes failed"),
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nodes_own_news_is_ignored_and_anothers_heard() {
        let signals = Signals::new();
        let mut hooks = signals.hooks.subscribe();
        let hook = Uuid::new_v4();
        signals.heard(HOOKS, &format!("me {hook} 5 new"), "me");
        assert!(hooks.try_recv().is_err());
        signals.heard(HOOKS, &format!("other {hook} 5 new"), "me");
        assert_eq!(
            hooks.try_recv().unwrap(),
            HookChange::Written {
                hook,
                at_ms: 5,
                begun_or_ended: true
            }
        );
        signals.heard(HOOKS, "other garbage", "me");
        assert_eq!(hooks.try_recv().unwrap(), HookChange::Unknown);
    }
}
