//! Shard leases: how the nodes of one database share the hooks'
//! deliveries (see `crate::cluster`). Every node beats its heart into
//! `cluster_nodes` and claims its fair share of `shard_leases` (the
//! shards over the nodes alive, rounded up), each for a lease it renews
//! well before it runs out. A node holding more than its share (another
//! joined) stops renewing the excess, which others claim once its lease
//! runs out, by when its attempts have ended; a node that dies loses its
//! shards the same way. Claims take rows `FOR UPDATE SKIP LOCKED`, so a
//! shard is never handed to two nodes.

use super::{Connection, connect_options};
use crate::Result;
use crate::cluster::{SHARDS, ShardSet};
use sqlx::{Connection as _, PgConnection};
use std::future::Future;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How many times a lease is renewed within its length.
const RENEWALS_PER_LEASE: u32 = 5;

/// Claims, renews and gives back this node's shards.
pub struct ShardLeases {
    connection: Connection,
    node: Uuid,
    lease: Duration,
    shards: ShardSet,
}

/// Renews the leases this node holds and has not given up; returns their
/// shards.
const RENEW: &str = "UPDATE shard_leases SET until = now() + make_interval(secs => $2) \
     WHERE node = $1 AND NOT released RETURNING shard";

/// Claims up to `$3` shards whose leases ran out (or were never taken);
/// returns each with whether it was taken over from a node that did not
/// give it up.
const CLAIM: &str = "WITH free AS ( \
         SELECT shard, node AS was, released FROM shard_leases \
         WHERE until < now() ORDER BY shard LIMIT $3 FOR UPDATE SKIP LOCKED) \
     UPDATE shard_leases s \
     SET node = $1, until = now() + make_interval(secs => $2), released = false \
     FROM free WHERE s.shard = free.shard \
     RETURNING s.shard, (free.was IS NOT NULL AND free.was <> $1 AND NOT free.released)";

impl ShardLeases {
    /// The leases of node `node` on the database `connection` names, each
    /// `lease` long: how long a dead node's shards wait for another.
    pub fn new(connection: &Connection, node: Uuid, lease: Duration) -> Self {
        ShardLeases {
            connection: connection.clone(),
            node,
            lease,
            shards: ShardSet::none(),
        }
    }

    /// What this node holds, as [`ShardLeases::run`] keeps it.
    pub fn shards(&self) -> ShardSet {
        self.shards.clone()
    }

    /// Keeps this node's share claimed and renewed until `stop` resolves,
    /// then gives every shard back at once (the node's attempts have
    /// ended by then) and leaves the cluster.
    pub async fn run(self, stop: impl Future<Output = ()> + Send) {
        let every = self.lease / RENEWALS_PER_LEASE;
        let mut session: Option<PgConnection> = None;
        tokio::pin!(stop);
        loop {
            let started = Instant::now();
            match self.renew(&mut session).await {
                Ok((held, taken_over)) => {
                    // Counted from before the renewal was asked for, less
                    // a margin, so that this node stops using a shard
                    // before the database would let another claim it.
                    let until = started + self.lease - every;
                    self.shards.set(held, until, taken_over);
                }
                Err(e) => {
                    session = None;
                    tracing::error!(error = %e, "renewing this node's shard leases failed");
                }
            }
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(every) => {}
            }
        }
        self.shards.set(0, Instant::now(), 0);
        if let Err(e) = self.give_back(&mut session).await {
            tracing::warn!(error = %e, "giving back shard leases failed; they run out on their own");
        }
    }

    /// The leases' own connection, not one of the store's pools: a node
    /// whose pools are all taken by requests must still renew in time.
    async fn session<'a>(
        &self,
        session: &'a mut Option<PgConnection>,
    ) -> Result<&'a mut PgConnection> {
        if session.is_none() {
            let fresh = PgConnection::connect_with(&connect_options(&self.connection)?).await?;
            *session = Some(fresh);
        }
        Ok(session.as_mut().expect("connected above"))
    }

    /// One round: beat, renew, give up the excess or claim the shortfall.
    /// Returns the shards held (a bit each) and how many were taken over.
    async fn renew(&self, session: &mut Option<PgConnection>) -> Result<(u64, u32)> {
        let conn = self.session(session).await?;
        let lease = self.lease.as_secs_f64();
        sqlx::query(
            "INSERT INTO cluster_nodes (node, seen) VALUES ($1, now()) \
             ON CONFLICT (node) DO UPDATE SET seen = now()",
        )
        .bind(self.node)
        .execute(&mut *conn)
        .await?;
        let alive: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM cluster_nodes WHERE seen > now() - make_interval(secs => $1)",
        )
        .bind(lease)
        .fetch_one(&mut *conn)
        .await?;
        let share = fair_share(alive);
        let mut held: Vec<i32> = sqlx::query_scalar(RENEW)
            .bind(self.node)
            .bind(lease)
            .fetch_all(&mut *conn)
            .await?;
        held.sort_unstable();
        let mut taken_over = 0;
        if held.len() > share {
            let excess = held.split_off(share);
            sqlx::query(
                "UPDATE shard_leases SET released = true WHERE node = $1 AND shard = ANY($2)",
            )
            .bind(self.node)
            .bind(&excess)
            .execute(&mut *conn)
            .await?;
        } else if held.len() < share {
            let claimed: Vec<(i32, bool)> = sqlx::query_as(CLAIM)
                .bind(self.node)
                .bind(lease)
                .bind((share - held.len()) as i64)
                .fetch_all(&mut *conn)
                .await?;
            for (shard, took_over) in claimed {
                held.push(shard);
                taken_over += u32::from(took_over);
            }
        }
        let bits = held
            .iter()
            .filter(|&&k| (0..SHARDS as i32).contains(&k))
            .fold(0u64, |bits, &k| bits | 1 << k);
        Ok((bits, taken_over))
    }

    async fn give_back(&self, session: &mut Option<PgConnection>) -> Result<()> {
        let conn = self.session(session).await?;
        sqlx::query(
            "UPDATE shard_leases SET node = NULL, until = '-infinity', released = false \
             WHERE node = $1",
        )
        .bind(self.node)
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM cluster_nodes WHERE node = $1")
            .bind(self.node)
            .execute(&mut *conn)
            .await?;
        if let Some(conn) = session.take() {
            let _ = conn.close().await;
        }
        Ok(())
    }
}

/// The shards each of `alive` nodes should hold: all of them between the
/// nodes, rounded up so that none is left over.
fn fair_share(alive: i64) -> usize {
    let alive = alive.max(1) as u32;
    SHARDS.div_ceil(alive) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDatabase;

    #[test]
    fn the_shards_are_shared_out_rounded_up() {
        assert_eq!(fair_share(0), 64);
        assert_eq!(fair_share(1), 64);
        assert_eq!(fair_share(3), 22);
    }

    /// Runs rounds of each node's leases, a tenth of `lease` apart, for
    /// `lasting`; returns the last round's.
    async fn rounds(
        nodes: &[&ShardLeases],
        sessions: &mut [Option<PgConnection>],
        lasting: Duration,
    ) -> Vec<(u64, u32)> {
        let until = Instant::now() + lasting;
        let mut taken_over = vec![0; nodes.len()];
        loop {
            let mut last = Vec::new();
            for ((node, session), taken) in
                nodes.iter().zip(sessions.iter_mut()).zip(&mut taken_over)
            {
                let (held, took) = node.renew(session).await.unwrap();
                *taken += took;
                last.push((held, *taken));
            }
            if Instant::now() >= until {
                return last;
            }
            tokio::time::sleep(nodes[0].lease / 10).await;
        }
    }

    #[tokio::test]
    async fn nodes_share_the_shards_and_take_over_a_dead_nodes_after_its_lease() {
        let Some(db) = TestDatabase::for_this_test().await else {
            return;
        };
        crate::postgres::migrate(&db.connection).await.unwrap();
        let lease = Duration::from_millis(600);
        let a = ShardLeases::new(&db.connection, Uuid::new_v4(), lease);
        let b = ShardLeases::new(&db.connection, Uuid::new_v4(), lease);
        let mut sessions = vec![None, None];

        // Alone, a holds everything.
        let first = rounds(&[&a], &mut sessions[..1], Duration::ZERO).await;
        assert_eq!(first[0], (u64::MAX, 0));

        // b joins: a gives up half, which b claims once the lease ran out.
        let shared = rounds(&[&a, &b], &mut sessions, lease * 2).await;
        let (held_a, held_b) = (shared[0].0, shared[1].0);
        assert_eq!(held_a & held_b, 0, "no shard is held twice");
        assert_eq!(held_a | held_b, u64::MAX, "every shard is held");
        assert_eq!(held_a.count_ones(), 32);
        assert_eq!(shared[1].1, 0, "given up, not taken over");

        // a dies: once its lease and heartbeat run out, b takes its shards
        // over, and says so.
        let after = rounds(&[&b], &mut sessions[1..], lease * 2).await;
        assert_eq!(after[0], (u64::MAX, 32));
    }
}
