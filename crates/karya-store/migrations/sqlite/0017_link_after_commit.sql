-- PostgreSQL only: there, events are linked into their chain just after their change commits,
-- in batches. On SQLite the single writer links them in the transaction itself
-- (crate::events::link_all).
SELECT 1;
