-- hookd's store on PostgreSQL: the same records as the embedded sled
-- backend, in the same encodings (crate::codec), so that one decoder,
-- one quarantine and one set of limits serve both.

-- Entities (gateway entities, event hooks, admins): one row each.
CREATE TABLE entities (
    kind text NOT NULL,
    id uuid NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (kind, id)
);

-- Unique values: the key is entities::unique_index_key (entity, fields,
-- canonical values), owned by one entity.
CREATE TABLE unique_values (
    key bytea PRIMARY KEY,
    kind text NOT NULL,
    id uuid NOT NULL
);
CREATE INDEX unique_values_owner ON unique_values (kind, id);

-- References: a child entity's foreign key to its parent.
CREATE TABLE entity_refs (
    parent_kind text NOT NULL,
    parent_id uuid NOT NULL,
    child_kind text NOT NULL,
    child_id uuid NOT NULL,
    field text NOT NULL,
    PRIMARY KEY (parent_kind, parent_id, child_kind, child_id, field)
);
CREATE INDEX entity_refs_child ON entity_refs (child_kind, child_id);

-- The outbox: records of events (outbox::encode_records), in the order
-- of their keys.
CREATE TABLE outbox (
    record bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body bytea NOT NULL
);

-- The delivery queue. The columns are the delivery's index entries: due
-- (when its next attempt runs), finished (when it ended) and dead.
CREATE TABLE deliveries (
    id uuid PRIMARY KEY,
    hook_id uuid NOT NULL,
    seq bigint NOT NULL,
    created_at_ms bigint NOT NULL,
    due_ms bigint,
    finished_ms bigint,
    dead boolean NOT NULL DEFAULT false,
    body bytea NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (due_ms, seq, id) WHERE due_ms IS NOT NULL;
CREATE INDEX deliveries_hook_due ON deliveries (hook_id, due_ms, seq, id) WHERE due_ms IS NOT NULL;
CREATE INDEX deliveries_by_hook ON deliveries (hook_id, created_at_ms, id);
CREATE INDEX deliveries_finished ON deliveries (finished_ms, id) WHERE finished_ms IS NOT NULL;
CREATE INDEX deliveries_dead ON deliveries (finished_ms, id) WHERE dead;

-- on_change, snooze and breaker memory of each hook.
CREATE TABLE hook_state (
    hook_id uuid NOT NULL,
    name text NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (hook_id, name)
);

-- Small values of the store itself (the dispatcher's place).
CREATE TABLE meta (
    key text PRIMARY KEY,
    value bytea NOT NULL
);

-- Guests: the record by name, what each digest is, and the bytes.
CREATE TABLE guests (
    name text PRIMARY KEY,
    id uuid NOT NULL UNIQUE,
    record bytea NOT NULL
);
CREATE TABLE guest_versions (
    digest text PRIMARY KEY,
    report bytea NOT NULL
);
CREATE TABLE guest_blobs (
    digest text PRIMARY KEY,
    bytes bytea NOT NULL
);

-- The audit log, one row per decision; allowed and denied apart by
-- verdict (0 allowed, 1 denied).
CREATE TABLE audit (
    verdict smallint NOT NULL,
    at_ms bigint NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    body bytea NOT NULL,
    PRIMARY KEY (verdict, at_ms, seq)
);

-- Admin tokens, by hash; one per admin.
CREATE TABLE admin_tokens (
    hash bytea PRIMARY KEY,
    admin uuid NOT NULL UNIQUE
);

-- Records that do not decode, moved aside (quarantine::Quarantined).
CREATE TABLE quarantine (
    id uuid PRIMARY KEY,
    origin smallint NOT NULL,
    key bytea NOT NULL,
    raw bytea NOT NULL,
    error text NOT NULL,
    at_ms bigint NOT NULL
);
