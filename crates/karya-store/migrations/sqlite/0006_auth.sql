-- People who sign in, their sessions and API tokens. Secrets are stored only as hashes:
-- passwords as argon2id PHC strings, session and API tokens as SHA-256 hex.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    -- The client a client_admin, client_user (or a client's own auditor) belongs to.
    client_id TEXT REFERENCES clients (id),
    -- The worker record of a worker, reviewer or lead.
    worker_id TEXT REFERENCES workers (id),
    password_hash TEXT,
    disabled INTEGER NOT NULL,
    created_at_us INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    csrf_token TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    expires_at_us INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at_us INTEGER NOT NULL,
    revoked_at_us INTEGER
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
