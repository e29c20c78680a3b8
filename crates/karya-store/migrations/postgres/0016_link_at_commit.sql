-- Events are linked into their client's chain by the database as the transaction commits.
--
-- A transaction writes its events to `event_queue`; a deferred trigger, run inside COMMIT,
-- moves them into `events` in order, computing each hash exactly as karya_core::chain::link
-- does, and advances the chain head. The head's row lock, which orders one client's events
-- across concurrent writers, is so taken only inside COMMIT and held for the linking and the
-- flush of the log, with no round trip to the application in between.
CREATE TABLE event_queue (
    id BIGSERIAL PRIMARY KEY,
    client_id TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    kind TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    -- JSON text, exactly as it will be stored and hashed.
    payload TEXT NOT NULL
);

CREATE FUNCTION karya_link_queued() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_chain TEXT;
    v_pending BIGINT;
    v_seq BIGINT;
    v_prev BYTEA;
    v_link BYTEA;
    ev RECORD;
BEGIN
    -- The first firing in a transaction links every queued event; the others find theirs gone.
    IF NOT EXISTS (SELECT 1 FROM event_queue WHERE id = NEW.id) THEN
        RETURN NULL;
    END IF;
    -- Chains in client id order, as every writer locks them.
    FOR v_chain IN SELECT DISTINCT client_id FROM event_queue ORDER BY client_id LOOP
        SELECT count(*) INTO v_pending FROM event_queue WHERE client_id = v_chain;
        UPDATE chain_heads h SET seq = h.seq + v_pending WHERE h.client_id = v_chain
            RETURNING h.seq, decode(h.hash, 'hex') INTO v_seq, v_prev;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no chain head for client %', v_chain;
        END IF;
        v_seq := v_seq - v_pending;
        FOR ev IN SELECT * FROM event_queue q WHERE q.client_id = v_chain ORDER BY q.id LOOP
            v_seq := v_seq + 1;
            v_link := sha256(
                convert_to('karya-event-v1', 'UTF8') || '\x00'::bytea || v_prev
                || decode(replace(v_chain, '-', ''), 'hex')
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
                VALUES (v_chain, v_seq, ev.at_us, ev.kind, ev.entity_type, ev.entity_id, ev.payload,
                        encode(v_prev, 'hex'), encode(v_link, 'hex'));
            v_prev := v_link;
        END LOOP;
        UPDATE chain_heads h SET hash = encode(v_prev, 'hex') WHERE h.client_id = v_chain;
        DELETE FROM event_queue q WHERE q.client_id = v_chain;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER event_queue_linked AFTER INSERT ON event_queue
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION karya_link_queued();
