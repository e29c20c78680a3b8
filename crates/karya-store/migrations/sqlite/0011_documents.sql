-- Documents of a work item: the files a client sends with it (scans, PDFs, spreadsheets), kept
-- in the database with their checksum so that a processor and a worker read exactly what was
-- received, and the audit trail can prove it. Attaching one writes `document.attached`.

CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    work_item_id TEXT NOT NULL REFERENCES work_items (id),
    name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    bytes BLOB NOT NULL,
    size INTEGER NOT NULL,
    -- Lower-case hex SHA-256 of the bytes.
    sha256 TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    -- The user who uploaded it (NULL when attached by karya itself).
    uploaded_by TEXT
);
CREATE INDEX documents_by_item ON documents (client_id, work_item_id, id);
