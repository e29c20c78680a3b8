-- Consensus (double keying): a group per (work item, step) whose k parts are keyed blind by
-- distinct workers, the answers each keyer gave, the adjudication task opened on a
-- disagreement, and per keyer whether the final answer proved them right. Agreement figures
-- are integers in parts per million, so a stored value reads back exactly on both engines.

CREATE TABLE consensus_groups (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    engagement_id TEXT NOT NULL REFERENCES engagements (id),
    work_item_id TEXT NOT NULL REFERENCES work_items (id),
    step TEXT NOT NULL,
    keyers INTEGER NOT NULL,
    -- 'keying', 'adjudicating' or 'settled'.
    state TEXT NOT NULL,
    field_agreement_ppm INTEGER,
    pairwise_agreement_ppm INTEGER,
    adjudication_task_id TEXT REFERENCES tasks (id),
    adjudicator_id TEXT REFERENCES workers (id),
    -- JSON object of the settled fields.
    answer TEXT,
    created_at_us INTEGER NOT NULL,
    settled_at_us INTEGER,
    UNIQUE (work_item_id, step)
);
CREATE INDEX consensus_groups_by_client ON consensus_groups (client_id, id);

-- Every task that is part of a group: the k keyings and, after a disagreement, the adjudication.
-- A worker takes at most one part of a group (enforced when tasks are claimed).
CREATE TABLE consensus_parts (
    task_id TEXT PRIMARY KEY REFERENCES tasks (id),
    group_id TEXT NOT NULL REFERENCES consensus_groups (id),
    client_id TEXT NOT NULL REFERENCES clients (id),
    -- 'keying' or 'adjudication'.
    role TEXT NOT NULL
);
CREATE INDEX consensus_parts_by_group ON consensus_parts (group_id);

-- What each keyer answered; one answer per worker per group, whatever the code does.
CREATE TABLE consensus_answers (
    task_id TEXT PRIMARY KEY REFERENCES tasks (id),
    group_id TEXT NOT NULL REFERENCES consensus_groups (id),
    client_id TEXT NOT NULL REFERENCES clients (id),
    worker_id TEXT NOT NULL REFERENCES workers (id),
    fields TEXT NOT NULL,
    keyed_at_us INTEGER NOT NULL,
    UNIQUE (group_id, worker_id)
);

-- Who was right: one check of each keyer's accuracy per settled group.
CREATE TABLE consensus_results (
    group_id TEXT NOT NULL REFERENCES consensus_groups (id),
    worker_id TEXT NOT NULL REFERENCES workers (id),
    client_id TEXT NOT NULL REFERENCES clients (id),
    engagement_id TEXT NOT NULL REFERENCES engagements (id),
    correct INTEGER NOT NULL,
    -- JSON arrays of the disputed fields the keyer matched and missed.
    fields_right TEXT NOT NULL,
    fields_wrong TEXT NOT NULL,
    decided_at_us INTEGER NOT NULL,
    PRIMARY KEY (group_id, worker_id)
);
CREATE INDEX consensus_results_by_engagement ON consensus_results (client_id, engagement_id, decided_at_us);
