-- Webhooks: a client's endpoints that receive its events, and the record of every delivery
-- attempt. The events table is the outbox: each endpoint keeps a cursor into its client's
-- chain (the seq of the last event delivered or passed over), so writing an event costs
-- nothing more. The secret is kept as is because every delivery is signed with it.

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    -- Event-kind prefixes, separated by spaces.
    events TEXT NOT NULL,
    -- active, suspended or removed.
    state TEXT NOT NULL,
    cursor_seq INTEGER NOT NULL,
    -- Consecutive failed attempts at the event after the cursor.
    failures INTEGER NOT NULL,
    next_attempt_at_us INTEGER NOT NULL,
    created_at_us INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_by_client ON webhook_endpoints (client_id, id);
CREATE INDEX webhook_endpoints_due ON webhook_endpoints (state, next_attempt_at_us);

CREATE TABLE webhook_attempts (
    webhook_id TEXT NOT NULL REFERENCES webhook_endpoints (id),
    client_id TEXT NOT NULL REFERENCES clients (id),
    seq INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    attempted_at_us INTEGER NOT NULL,
    -- The HTTP status answered, or NULL when no answer came (then error says why).
    status INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (webhook_id, seq, attempt)
);
