-- Site-owned business calendars, engagements whose SLA clocks run on a site's calendar,
-- accuracy credits, and indexes for period reports.

-- A delivery site's working calendar, one per site, in the shape of `calendars`.
CREATE TABLE site_calendars (
    site_id TEXT PRIMARY KEY REFERENCES sites (id),
    name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    week TEXT NOT NULL,
    holidays TEXT NOT NULL,
    exceptions TEXT NOT NULL,
    updated_at_us INTEGER NOT NULL
);

-- An engagement's clocks run on one of its client's calendars or on a site's calendar:
-- exactly one of `calendar_id` and `calendar_site_id`. SQLite cannot drop a NOT NULL, so the
-- table is rebuilt (nothing references it).
CREATE TABLE engagement_sla_v13 (
    engagement_id TEXT PRIMARY KEY REFERENCES engagements (id),
    client_id TEXT NOT NULL REFERENCES clients (id),
    calendar_id TEXT REFERENCES calendars (id),
    calendar_site_id TEXT REFERENCES site_calendars (site_id),
    pricing TEXT NOT NULL,
    credit_per_point_bp INTEGER,
    credit_cap_bp INTEGER,
    accuracy_credit_per_point_bp INTEGER,
    accuracy_credit_cap_bp INTEGER,
    updated_at_us INTEGER NOT NULL,
    CHECK ((calendar_id IS NULL) <> (calendar_site_id IS NULL))
);
INSERT INTO engagement_sla_v13 (engagement_id, client_id, calendar_id, pricing,
    credit_per_point_bp, credit_cap_bp, updated_at_us)
SELECT engagement_id, client_id, calendar_id, pricing, credit_per_point_bp, credit_cap_bp,
    updated_at_us
FROM engagement_sla;
DROP TABLE engagement_sla;
ALTER TABLE engagement_sla_v13 RENAME TO engagement_sla;
CREATE INDEX engagement_sla_by_calendar ON engagement_sla (client_id, calendar_id);
CREATE INDEX engagement_sla_by_site_calendar ON engagement_sla (calendar_site_id);

-- Period reports read items by receipt, tasks by activity and a task's assignments.
CREATE INDEX work_items_by_received ON work_items (received_at_us);
CREATE INDEX tasks_by_updated ON tasks (updated_at_us);
CREATE INDEX assignments_by_task ON assignments (task_id);
