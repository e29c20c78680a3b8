-- Decisions under client policy: decision types per engagement, versioned policies in layers,
-- and the decision ledger. JSON columns hold attribute trees and traces as text.

CREATE TABLE decision_types (
    client_id TEXT NOT NULL REFERENCES clients (id),
    engagement_id TEXT NOT NULL REFERENCES engagements (id),
    name TEXT NOT NULL,
    amount_field TEXT,
    limits TEXT NOT NULL,
    required_qualifications TEXT NOT NULL,
    -- NULL: irreversible; otherwise the compensating action.
    inverse_action TEXT,
    undo_window_hours BIGINT NOT NULL,
    reopen_on_undo BIGINT NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (engagement_id, name)
);

-- Every published version; the latest of each (scope, key) is in force.
CREATE TABLE policies (
    id TEXT PRIMARY KEY,
    -- NULL for firm policies, which cover every client.
    client_id TEXT REFERENCES clients (id),
    layer TEXT NOT NULL,
    engagement_id TEXT,
    team TEXT,
    policy_key TEXT NOT NULL,
    version BIGINT NOT NULL,
    decision_type TEXT,
    constraint_kind TEXT NOT NULL,
    field TEXT,
    limit_value BIGINT,
    expression TEXT,
    on_fail TEXT NOT NULL,
    is_default BIGINT NOT NULL,
    reason TEXT,
    effective_from_us BIGINT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX policies_by_client ON policies (client_id, seq);

CREATE TABLE decisions (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    engagement_id TEXT NOT NULL REFERENCES engagements (id),
    work_item_id TEXT NOT NULL REFERENCES work_items (id),
    task_id TEXT REFERENCES tasks (id),
    decision_type TEXT NOT NULL,
    team TEXT,
    payload TEXT NOT NULL,
    item TEXT NOT NULL,
    context TEXT NOT NULL,
    decided_by TEXT NOT NULL REFERENCES workers (id),
    designation TEXT NOT NULL,
    qualifications TEXT NOT NULL,
    decided_at_us BIGINT NOT NULL,
    status TEXT NOT NULL,
    applied TEXT NOT NULL,
    trace TEXT NOT NULL,
    updated_at_us BIGINT NOT NULL
);
CREATE INDEX decisions_by_client ON decisions (client_id, id);
CREATE INDEX decisions_in_force ON decisions (client_id, decided_at_us) WHERE status = 'in_force';
