-- Case routing and shift-driven presence: per-channel capacity caps, free attributes for
-- target expressions, breaks in the shift pattern and who set presence last (the worker or
-- the shift), workers excluded from one task (a decline, a named conflict), and an index to
-- find the qualifications that have lapsed.

-- [{"channel": "ticket", "units_max": 4}, ...]
ALTER TABLE worker_routing ADD COLUMN channel_caps TEXT NOT NULL DEFAULT '[]';
-- {"team": "ip", ...}
ALTER TABLE worker_routing ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
-- [[minutes after the block's start, length in minutes], ...]
ALTER TABLE worker_routing ADD COLUMN breaks TEXT NOT NULL DEFAULT '[]';
-- 'worker' or 'shift'.
ALTER TABLE worker_routing ADD COLUMN presence_by TEXT NOT NULL DEFAULT 'worker';

CREATE TABLE task_exclusions (
    task_id TEXT NOT NULL REFERENCES tasks (id),
    client_id TEXT NOT NULL REFERENCES clients (id),
    worker_id TEXT NOT NULL REFERENCES workers (id),
    -- 'declined' or 'conflict'.
    reason TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (task_id, worker_id)
);

CREATE INDEX worker_qualifications_by_until ON worker_qualifications (valid_until_us)
    WHERE valid_until_us IS NOT NULL;
