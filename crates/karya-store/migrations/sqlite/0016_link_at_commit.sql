-- PostgreSQL only: there, events are linked into their chain by a trigger inside COMMIT. On
-- SQLite the single writer links them in the transaction itself (crate::events::link_all).
SELECT 1;
