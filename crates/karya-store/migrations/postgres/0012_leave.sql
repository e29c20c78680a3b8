-- A worker's leave: no shift counts between `from` and `until` (the router offers nothing, the
-- worker's shift page shows it). Times are microseconds since the Unix epoch.

CREATE TABLE worker_leave (
    id TEXT PRIMARY KEY,
    worker_id TEXT NOT NULL REFERENCES workers (id),
    from_us BIGINT NOT NULL,
    until_us BIGINT NOT NULL,
    note TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    CHECK (from_us < until_us)
);
CREATE INDEX worker_leave_by_worker ON worker_leave (worker_id, until_us);
