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
    updated_at_us BIGINT NOT NULL
);

-- An engagement's clocks run on one of its client's calendars or on a site's calendar:
-- exactly one of `calendar_id` and `calendar_site_id`.
ALTER TABLE engagement_sla ALTER COLUMN calendar_id DROP NOT NULL;
ALTER TABLE engagement_sla ADD COLUMN calendar_site_id TEXT REFERENCES site_calendars (site_id);
ALTER TABLE engagement_sla ADD COLUMN accuracy_credit_per_point_bp BIGINT;
ALTER TABLE engagement_sla ADD COLUMN accuracy_credit_cap_bp BIGINT;
ALTER TABLE engagement_sla ADD CONSTRAINT engagement_sla_one_calendar
    CHECK ((calendar_id IS NULL) <> (calendar_site_id IS NULL));
CREATE INDEX engagement_sla_by_site_calendar ON engagement_sla (calendar_site_id);

-- Period reports read items by receipt, tasks by activity and a task's assignments.
CREATE INDEX work_items_by_received ON work_items (received_at_us);
CREATE INDEX tasks_by_updated ON tasks (updated_at_us);
CREATE INDEX assignments_by_task ON assignments (task_id);
