-- Foundation schema: tenants, the hash-chained event log, engagements, work items, tasks,
-- workers and assignments. Times are microseconds since the Unix epoch (UTC); ids are UUID text.

CREATE TABLE sites (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    time_zone TEXT NOT NULL,
    country TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    currency TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);

-- The last link of each client's chain; updated in the same transaction as every event.
-- The nil UUID names the firm's own chain (sites, workers), which belongs to no client.
CREATE TABLE chain_heads (
    client_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE events (
    client_id TEXT NOT NULL REFERENCES chain_heads (client_id),
    seq BIGINT NOT NULL,
    at_us BIGINT NOT NULL,
    kind TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (client_id, seq)
);
CREATE INDEX events_by_entity ON events (client_id, entity_type, entity_id);

CREATE TABLE engagements (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    name TEXT NOT NULL,
    service_line TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    UNIQUE (client_id, name)
);
CREATE INDEX engagements_by_client ON engagements (client_id, id);

CREATE TABLE work_items (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    engagement_id TEXT NOT NULL REFERENCES engagements (id),
    external_ref TEXT,
    title TEXT NOT NULL,
    priority BIGINT NOT NULL,
    state TEXT NOT NULL,
    input TEXT NOT NULL,
    received_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX work_items_by_client ON work_items (client_id, id);
CREATE INDEX work_items_by_client_state ON work_items (client_id, state, id);
CREATE UNIQUE INDEX work_items_external_ref ON work_items (engagement_id, external_ref)
    WHERE external_ref IS NOT NULL;

CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    site_id TEXT REFERENCES sites (id),
    designation TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);

CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    work_item_id TEXT NOT NULL REFERENCES work_items (id),
    step TEXT NOT NULL,
    priority BIGINT NOT NULL,
    state TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL
);
CREATE INDEX tasks_by_work_item ON tasks (client_id, work_item_id);
-- The queue of claimable work: highest priority first, then oldest.
CREATE INDEX tasks_ready ON tasks (priority DESC, created_at_us, id) WHERE state = 'ready';

CREATE TABLE assignments (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks (id),
    client_id TEXT NOT NULL REFERENCES clients (id),
    worker_id TEXT NOT NULL REFERENCES workers (id),
    assigned_at_us BIGINT NOT NULL,
    released_at_us BIGINT
);
-- A task is never held by two workers at once, whatever the code does.
CREATE UNIQUE INDEX assignments_one_active_per_task ON assignments (task_id) WHERE released_at_us IS NULL;
CREATE INDEX assignments_by_worker ON assignments (worker_id) WHERE released_at_us IS NULL;
