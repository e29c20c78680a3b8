-- Push routing and the background loops: offers made by the router with their outcome, and
-- the SLA warnings already given (one per work item and milestone).

-- An offer reserves `units` of the worker's capacity until it ends (outcome set). At most one
-- offer per task is open at a time, whatever the code does.
CREATE TABLE offers (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    task_id TEXT NOT NULL REFERENCES tasks (id),
    worker_id TEXT NOT NULL REFERENCES workers (id),
    units BIGINT NOT NULL,
    offered_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL,
    -- NULL while open; then accepted, declined, timed_out or withdrawn.
    outcome TEXT,
    ended_at_us BIGINT,
    explanation_id TEXT NOT NULL
);
CREATE UNIQUE INDEX offers_one_open_per_task ON offers (task_id) WHERE outcome IS NULL;
CREATE INDEX offers_open_by_worker ON offers (worker_id) WHERE outcome IS NULL;
CREATE INDEX offers_open_by_expiry ON offers (expires_at_us) WHERE outcome IS NULL;
CREATE INDEX offers_by_task ON offers (task_id);

-- The SLA warnings given: the primary key makes each warning once per item and milestone.
CREATE TABLE sla_warnings (
    work_item_id TEXT NOT NULL REFERENCES work_items (id),
    client_id TEXT NOT NULL REFERENCES clients (id),
    milestone TEXT NOT NULL,
    reason TEXT NOT NULL,
    warned_at_us BIGINT NOT NULL,
    PRIMARY KEY (work_item_id, milestone)
);
