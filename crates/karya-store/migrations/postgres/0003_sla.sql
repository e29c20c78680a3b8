-- SLA engine and billing: business calendars, SLA terms and pricing per engagement, and the
-- derived SLA state of each work item (recomputable at any time from the event log).
-- Times are microseconds since the Unix epoch; business durations are seconds.

-- A client's working calendar. `week`, `holidays` and `exceptions` are JSON documents:
-- week = [[["09:00","18:00"]], ...] (seven lists of shifts, Monday first),
-- holidays = ["2026-01-26", ...], exceptions = {"2026-03-07": [["09:00","13:00"]]}.
CREATE TABLE calendars (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    week TEXT NOT NULL,
    holidays TEXT NOT NULL,
    exceptions TEXT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    UNIQUE (client_id, name)
);

-- How an engagement's SLA is measured and billed: the calendar its clocks run on, its pricing
-- (JSON) and the credit owed per point below the on-time target.
CREATE TABLE engagement_sla (
    engagement_id TEXT PRIMARY KEY REFERENCES engagements (id),
    client_id TEXT NOT NULL REFERENCES clients (id),
    calendar_id TEXT NOT NULL REFERENCES calendars (id),
    pricing TEXT NOT NULL,
    credit_per_point_bp BIGINT,
    credit_cap_bp BIGINT,
    updated_at_us BIGINT NOT NULL
);
CREATE INDEX engagement_sla_by_calendar ON engagement_sla (client_id, calendar_id);

-- SLA targets per engagement and priority (priority as the rank work_items use).
CREATE TABLE sla_terms (
    engagement_id TEXT NOT NULL REFERENCES engagements (id),
    client_id TEXT NOT NULL REFERENCES clients (id),
    priority BIGINT NOT NULL,
    first_response_s BIGINT NOT NULL,
    resolution_s BIGINT NOT NULL,
    warning_pct BIGINT NOT NULL,
    on_time_target_bp BIGINT NOT NULL,
    accuracy_target_bp BIGINT NOT NULL,
    PRIMARY KEY (engagement_id, priority)
);

-- The SLA state of a work item as last computed; derived data, rewritten whole on recompute.
CREATE TABLE sla_states (
    work_item_id TEXT PRIMARY KEY REFERENCES work_items (id),
    client_id TEXT NOT NULL REFERENCES clients (id),
    engagement_id TEXT NOT NULL REFERENCES engagements (id),
    clock_state TEXT NOT NULL,
    started_at_us BIGINT NOT NULL,
    response_target_s BIGINT NOT NULL,
    response_elapsed_s BIGINT NOT NULL,
    response_due_at_us BIGINT,
    response_met_at_us BIGINT,
    response_breached BIGINT NOT NULL,
    resolution_target_s BIGINT NOT NULL,
    resolution_elapsed_s BIGINT NOT NULL,
    resolution_due_at_us BIGINT,
    resolution_warn_at_us BIGINT,
    resolution_met_at_us BIGINT,
    resolution_breached BIGINT NOT NULL,
    computed_at_us BIGINT NOT NULL
);
CREATE INDEX sla_states_by_engagement ON sla_states (client_id, engagement_id);
CREATE INDEX sla_states_running ON sla_states (clock_state, resolution_due_at_us);
