-- Work flowing through its pack: the pack an engagement runs on (with the step plan and the
-- deliverable's shape it keeps from it), routing requirements per step, task outputs, the
-- durable job queue of processor steps, and deliverables stored as JSON documents.

CREATE TABLE engagement_packs (
    engagement_id TEXT PRIMARY KEY REFERENCES engagements (id),
    client_id TEXT NOT NULL REFERENCES clients (id),
    pack_id TEXT NOT NULL,
    pack_version INTEGER NOT NULL,
    -- JSON array of {"name", "processor"} in step order.
    steps TEXT NOT NULL,
    -- JSON {"files": [{"name", "media_type", "description", "required"}], "fields": [...]}.
    deliverable TEXT NOT NULL,
    applied_at_us INTEGER NOT NULL
);

CREATE TABLE step_routing (
    engagement_id TEXT NOT NULL REFERENCES engagements (id),
    step TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id),
    requirements TEXT NOT NULL,
    PRIMARY KEY (engagement_id, step)
);

CREATE TABLE task_outputs (
    task_id TEXT NOT NULL REFERENCES tasks (id),
    submission INTEGER NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id),
    output TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    recorded_at_us INTEGER NOT NULL,
    PRIMARY KEY (task_id, submission)
);

-- Processor steps waiting for, or run by, a processor.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    work_item_id TEXT NOT NULL REFERENCES work_items (id),
    step TEXT NOT NULL,
    processor TEXT NOT NULL,
    -- 'queued', 'running', 'done' or 'failed' (every attempt used; the step went to a person).
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    -- A queued job is not claimed before this time (the backoff after a failed attempt).
    run_after_us INTEGER NOT NULL,
    claimed_by TEXT,
    claimed_at_us INTEGER,
    output TEXT,
    -- Why the last attempt failed.
    last_error TEXT,
    created_at_us INTEGER NOT NULL,
    finished_at_us INTEGER
);
CREATE INDEX jobs_queued ON jobs (run_after_us, created_at_us, id) WHERE state = 'queued';
-- Running jobs, for taking over those whose claim has expired.
CREATE INDEX jobs_running ON jobs (claimed_at_us) WHERE state = 'running';
CREATE INDEX jobs_by_work_item ON jobs (client_id, work_item_id);

CREATE TABLE deliverables (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    work_item_id TEXT NOT NULL REFERENCES work_items (id),
    name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    content TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created_at_us INTEGER NOT NULL
);
CREATE INDEX deliverables_by_work_item ON deliverables (client_id, work_item_id);
