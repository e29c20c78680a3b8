-- Routing: what the router knows about workers (qualifications, skills, presence, shifts,
-- capacity, conflicts), each engagement's requirements and routing workflow, and the
-- explanation stored with every routing decision. JSON columns hold small lists whose shape
-- the store checks when it reads them.

CREATE TABLE worker_qualifications (
    id TEXT PRIMARY KEY,
    worker_id TEXT NOT NULL REFERENCES workers (id),
    kind TEXT NOT NULL,
    field TEXT,
    issuer TEXT NOT NULL,
    valid_from_us BIGINT NOT NULL,
    valid_until_us BIGINT
);
CREATE INDEX worker_qualifications_by_worker ON worker_qualifications (worker_id);

CREATE TABLE worker_skills (
    worker_id TEXT NOT NULL REFERENCES workers (id),
    skill TEXT NOT NULL,
    level BIGINT NOT NULL CHECK (level BETWEEN 1 AND 10),
    growing BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (worker_id, skill)
);

-- One row per worker: presence and the scalar parts of the routing profile.
CREATE TABLE worker_routing (
    worker_id TEXT PRIMARY KEY REFERENCES workers (id),
    presence TEXT NOT NULL,
    presence_since_us BIGINT NOT NULL,
    languages TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    -- [[weekday 1-7, minute of day, length in minutes], ...]
    shifts TEXT NOT NULL,
    capacity_units BIGINT NOT NULL,
    excluded_clients TEXT NOT NULL,
    updated_at_us BIGINT NOT NULL
);

-- Per engagement: what its tasks require and the workflow that relaxes it over time.
CREATE TABLE engagement_routing (
    engagement_id TEXT PRIMARY KEY REFERENCES engagements (id),
    client_id TEXT NOT NULL REFERENCES clients (id),
    requirements TEXT NOT NULL,
    workflow TEXT NOT NULL,
    updated_at_us BIGINT NOT NULL
);

CREATE TABLE routing_explanations (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    task_id TEXT NOT NULL REFERENCES tasks (id),
    worker_id TEXT REFERENCES workers (id),
    assignment_id TEXT,
    path TEXT NOT NULL,
    rule TEXT NOT NULL,
    explanation TEXT NOT NULL,
    decided_at_us BIGINT NOT NULL
);
CREATE INDEX routing_explanations_by_task ON routing_explanations (client_id, task_id, decided_at_us);
