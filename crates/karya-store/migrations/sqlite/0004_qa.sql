-- Quality assurance: per-engagement QA policy, reviewer qualifications, reviews and their
-- defects, sampling decisions and the evidence per (engagement, worker, step), gold answers
-- and their scores. Rates and probabilities are integers in parts per million, so a stored
-- value reads back exactly on both engines.

CREATE TABLE qa_policies (
    engagement_id TEXT PRIMARY KEY REFERENCES engagements (id),
    client_id TEXT NOT NULL REFERENCES clients (id),
    accuracy_target_ppm INTEGER NOT NULL,
    confidence_ppm INTEGER NOT NULL,
    min_checks INTEGER NOT NULL,
    floor_rate_ppm INTEGER NOT NULL,
    checks_after_failure INTEGER NOT NULL,
    reviewer_min_designation TEXT NOT NULL,
    reviewer_qualification TEXT,
    rework_policy TEXT NOT NULL,
    -- JSON array of the defect categories reviewers may use.
    defect_categories TEXT NOT NULL,
    gold_window INTEGER NOT NULL,
    gold_min_scored INTEGER NOT NULL,
    gold_threshold_ppm INTEGER NOT NULL,
    updated_at_us INTEGER NOT NULL
);

-- The qualifications a worker is recognised for when reviewing (e.g. ca for bookkeeping).
CREATE TABLE reviewer_qualifications (
    worker_id TEXT NOT NULL REFERENCES workers (id),
    qualification TEXT NOT NULL,
    granted_at_us INTEGER NOT NULL,
    PRIMARY KEY (worker_id, qualification)
);

-- The evidence about one worker on one step of one engagement, and whether gold results
-- have paused them there.
CREATE TABLE sampling_states (
    engagement_id TEXT NOT NULL REFERENCES engagements (id),
    worker_id TEXT NOT NULL REFERENCES workers (id),
    step TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id),
    checks INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    checks_since_error INTEGER,
    paused_at_us INTEGER,
    updated_at_us INTEGER NOT NULL,
    PRIMARY KEY (engagement_id, worker_id, step)
);

-- One row per submission of a task: the sampling decision and its reason.
CREATE TABLE qa_submissions (
    task_id TEXT NOT NULL REFERENCES tasks (id),
    submission INTEGER NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id),
    engagement_id TEXT NOT NULL REFERENCES engagements (id),
    step TEXT NOT NULL,
    worker_id TEXT NOT NULL REFERENCES workers (id),
    -- 'review', 'skip' or 'gold'.
    outcome TEXT NOT NULL,
    rate_ppm INTEGER NOT NULL,
    draw_ppm INTEGER NOT NULL,
    reason TEXT NOT NULL,
    submitted_at_us INTEGER NOT NULL,
    PRIMARY KEY (task_id, submission)
);
CREATE INDEX qa_submissions_by_engagement ON qa_submissions (client_id, engagement_id, submitted_at_us);

CREATE TABLE reviews (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    task_id TEXT NOT NULL REFERENCES tasks (id),
    engagement_id TEXT NOT NULL REFERENCES engagements (id),
    step TEXT NOT NULL,
    maker_id TEXT NOT NULL REFERENCES workers (id),
    reviewer_id TEXT NOT NULL REFERENCES workers (id),
    verdict TEXT NOT NULL,
    -- For failed work sent to someone else: the maker, who may not take it again.
    rework_excluded_id TEXT REFERENCES workers (id),
    reviewed_at_us INTEGER NOT NULL,
    CHECK (maker_id <> reviewer_id)
);
CREATE INDEX reviews_by_task ON reviews (client_id, task_id);
CREATE INDEX reviews_by_engagement ON reviews (client_id, engagement_id, reviewed_at_us);

CREATE TABLE review_defects (
    review_id TEXT NOT NULL REFERENCES reviews (id),
    idx INTEGER NOT NULL,
    category TEXT NOT NULL,
    severity TEXT NOT NULL,
    field TEXT,
    comment TEXT NOT NULL,
    PRIMARY KEY (review_id, idx)
);

-- Tasks with a known answer (JSON object of field → value), never shown to the worker as such.
CREATE TABLE gold_answers (
    task_id TEXT PRIMARY KEY REFERENCES tasks (id),
    client_id TEXT NOT NULL REFERENCES clients (id),
    expected TEXT NOT NULL,
    created_at_us INTEGER NOT NULL
);

CREATE TABLE gold_results (
    task_id TEXT NOT NULL REFERENCES tasks (id),
    submission INTEGER NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id),
    engagement_id TEXT NOT NULL REFERENCES engagements (id),
    step TEXT NOT NULL,
    worker_id TEXT NOT NULL REFERENCES workers (id),
    correct INTEGER NOT NULL,
    -- JSON array of the expected fields the answer got wrong.
    fields_wrong TEXT NOT NULL,
    scored_at_us INTEGER NOT NULL,
    PRIMARY KEY (task_id, submission)
);
CREATE INDEX gold_results_by_worker ON gold_results (engagement_id, worker_id, step, scored_at_us);
