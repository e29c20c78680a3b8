-- Indexes for look-ups that scanned whole tables: a work item's tasks without its client (the
-- case history every routing decision reads, across clients), and the reviews of a maker's
-- work (their own page).
CREATE INDEX tasks_by_item ON tasks (work_item_id);
CREATE INDEX reviews_by_maker ON reviews (maker_id, reviewed_at_us);
