-- Many nodes on one database (see src/postgres/cluster.rs).

-- A delivery's attempts, counted beside its body: a write never replaces
-- a delivery with more attempts recorded than it has, so that a node that
-- lost a hook's shard mid-attempt cannot record over the node that took
-- the shard over.
ALTER TABLE deliveries ADD COLUMN attempts integer NOT NULL DEFAULT 0;

-- The nodes, each seen at its last heartbeat: those seen within a lease
-- share the shards.
CREATE TABLE cluster_nodes (
    node uuid PRIMARY KEY,
    seen timestamptz NOT NULL
);

-- The shards of the hooks' deliveries, each held by one node until its
-- lease runs out; `released` when the node gave it up for another to take
-- once the lease has run out.
CREATE TABLE shard_leases (
    shard integer PRIMARY KEY,
    node uuid,
    until timestamptz NOT NULL DEFAULT '-infinity',
    released boolean NOT NULL DEFAULT false
);
-- Every shard, unheld (64: crate::cluster::SHARDS, the same on every node).
INSERT INTO shard_leases (shard) SELECT generate_series(0, 63);
