-- Bot flows: a contact's session between messages, its scheduled wakeups (ask
-- timeouts, http deadlines), and the handoffs of conversations to the agents' queue.

CREATE TABLE flow_sessions (
    contact_id  INTEGER PRIMARY KEY REFERENCES contacts (id) ON DELETE CASCADE,
    flow_id     TEXT NOT NULL,
    waiting_for TEXT NOT NULL CHECK (waiting_for IN ('reply', 'http')),
    wait_seq    INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (json_valid(state)),  -- the session as JSON
    updated_at  TEXT NOT NULL
);

-- A wakeup is claimed by deleting it in the transaction that applies it.
CREATE TABLE flow_wakeups (
    id         INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('timeout', 'http')),
    wait_seq   INTEGER NOT NULL,
    due_at     TEXT NOT NULL
);
CREATE INDEX flow_wakeups_by_due ON flow_wakeups (due_at, id);
CREATE INDEX flow_wakeups_by_contact ON flow_wakeups (contact_id);

CREATE TABLE flow_handoffs (
    id         INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts (id),
    flow_id    TEXT NOT NULL,
    queue      TEXT,
    note       TEXT,
    at         TEXT NOT NULL
);
CREATE INDEX flow_handoffs_by_contact ON flow_handoffs (contact_id, id);
