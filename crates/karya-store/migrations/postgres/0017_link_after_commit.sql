-- Events are linked into their client's chain just after their change commits, in batches.
--
-- Migration 16 linked a transaction's queued events inside its own COMMIT. The chain head's row
-- lock was then held through the flush of the log, so every commit of a client waited for the
-- one before it to reach the disk: one client's writers committed one at a time, however many
-- connections they had. Now a transaction only queues its events (they commit with the change
-- or vanish with it), and after it commits the writer calls `karya_link_pending` for each
-- client it wrote events for, in a transaction of its own. That call takes the head's lock and
-- links every event queued for the client and committed so far, in queue order, so writers that
-- commit together are linked by one of them in one flush; the others find their events linked
-- and write nothing. The call returns once the caller's events are linked, so a writer reads its
-- own events as before. Events left queued by a writer that stopped between its commit and the
-- call are linked by the client's next call, or when the store is opened.
DROP TRIGGER event_queue_linked ON event_queue;
DROP FUNCTION karya_link_queued();

CREATE INDEX event_queue_by_client ON event_queue (client_id, id);

-- Links the events queued for `p_client`; returns how many it linked. Each hash is computed
-- exactly as karya_core::chain::link does.
CREATE FUNCTION karya_link_pending(p_client TEXT) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    v_seq BIGINT;
    v_prev BYTEA;
    v_link BYTEA;
    v_linked BIGINT := 0;
    ev RECORD;
BEGIN
    -- Nothing queued, or all of it being linked by a call that holds the lock and has deleted it:
    -- no lock to wait for, nothing written. (Rows another call deleted without committing yet are
    -- still seen here; this call then waits for that one below and finds them gone.)
    IF NOT EXISTS (SELECT 1 FROM event_queue WHERE client_id = p_client) THEN
        RETURN 0;
    END IF;
    SELECT h.seq, decode(h.hash, 'hex') INTO v_seq, v_prev
        FROM chain_heads h WHERE h.client_id = p_client FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no chain head for client %', p_client;
    END IF;
    -- Taken under the lock, so with a snapshot after the previous holder's commit: what it
    -- linked is gone, what committed since is here.
    FOR ev IN
        WITH taken AS (DELETE FROM event_queue q WHERE q.client_id = p_client RETURNING q.*)
        SELECT * FROM taken ORDER BY id
    LOOP
        v_seq := v_seq + 1;
        v_link := sha256(
            convert_to('karya-event-v1', 'UTF8') || '\x00'::bytea || v_prev
            || decode(replace(p_client, '-', ''), 'hex')
            || int8send(v_seq) || int8send(ev.at_us)
            || int8send(octet_length(convert_to(ev.kind, 'UTF8'))::bigint)
            || convert_to(ev.kind, 'UTF8')
            || int8send(octet_length(convert_to(ev.entity_type, 'UTF8'))::bigint)
            || convert_to(ev.entity_type, 'UTF8')
            || int8send(octet_length(convert_to(ev.entity_id, 'UTF8'))::bigint)
            || convert_to(ev.entity_id, 'UTF8')
            || int8send(octet_length(convert_to(ev.payload, 'UTF8'))::bigint)
            || convert_to(ev.payload, 'UTF8'));
        INSERT INTO events (client_id, seq, at_us, kind, entity_type, entity_id, payload, prev_hash, hash)
            VALUES (p_client, v_seq, ev.at_us, ev.kind, ev.entity_type, ev.entity_id, ev.payload,
                    encode(v_prev, 'hex'), encode(v_link, 'hex'));
        v_prev := v_link;
        v_linked := v_linked + 1;
    END LOOP;
    IF v_linked > 0 THEN
        UPDATE chain_heads h SET seq = v_seq, hash = encode(v_prev, 'hex')
            WHERE h.client_id = p_client;
    END IF;
    RETURN v_linked;
END
$$;
