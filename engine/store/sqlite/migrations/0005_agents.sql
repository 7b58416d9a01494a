-- Agents: accounts, console sessions, failed sign-ins, and the agents' desk
-- (who took a conversation over or released it, what an agent wrote and confirmed,
-- and when a conversation was last read). Timestamps as in 0001.

CREATE TABLE agents (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    email         TEXT NOT NULL UNIQUE,  -- stored lower-case
    role          TEXT NOT NULL CHECK (role IN ('agent', 'admin')),
    password_hash TEXT NOT NULL,         -- scrypt$N$r$p$salt$key (engine/agents/passwords.py)
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- A console sign-in. Only the SHA-256 of the cookie's token is kept, so a copy of
-- the database does not let anyone sign in.
CREATE TABLE agent_sessions (
    token_sha256 TEXT PRIMARY KEY,
    agent_id     INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX agent_sessions_by_expiry ON agent_sessions (expires_at);

-- Failed sign-ins, by what they were limited on ("email:ann@example.com", "ip:127.0.0.1").
CREATE TABLE login_failures (
    id  INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    at  TEXT NOT NULL
);
CREATE INDEX login_failures_by_key ON login_failures (key, at);

-- Takeovers and releases, oldest first; a release may ask for a flow to restart.
CREATE TABLE conversation_events (
    id         INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts (id),
    kind       TEXT NOT NULL CHECK (kind IN ('takeover', 'release')),
    agent      TEXT,   -- the agent's email; NULL when the API released without naming one
    flow       TEXT,   -- release: the flow asked to restart
    at         TEXT NOT NULL
);
CREATE INDEX conversation_events_by_contact ON conversation_events (contact_id, id);

-- What the compose box adds to an outbound message: its author, and, for a MARKETING
-- template to a contact who opted out, who confirmed sending it anyway and when.
CREATE TABLE compose_messages (
    message_id    TEXT PRIMARY KEY REFERENCES messages (id),
    agent         TEXT NOT NULL,
    confirmed_by  TEXT,
    confirmed_at  TEXT,
    CHECK ((confirmed_by IS NULL) = (confirmed_at IS NULL))
);

-- When an agent last read a conversation: inbound messages after it are unread.
CREATE TABLE conversation_reads (
    contact_id INTEGER PRIMARY KEY REFERENCES contacts (id),
    read_at    TEXT NOT NULL,
    read_by    TEXT NOT NULL
);
