-- Contacts, the consent ledger, templates, messages, conversations.
-- Timestamps are UTC text of fixed width (YYYY-MM-DDTHH:MM:SS.ffffffZ), so they sort.

CREATE TABLE contacts (
    id               INTEGER PRIMARY KEY,
    wa_id            TEXT UNIQUE,
    user_id          TEXT UNIQUE,
    name             TEXT,
    marketing_opt_in INTEGER NOT NULL CHECK (marketing_opt_in IN (0, 1)),
    attributes       TEXT NOT NULL DEFAULT '{}' CHECK (json_type(attributes) = 'object'),
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    CHECK (wa_id IS NOT NULL OR user_id IS NOT NULL)
);

CREATE TABLE contact_tags (
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    tag        TEXT NOT NULL,
    PRIMARY KEY (contact_id, tag)
) WITHOUT ROWID;
CREATE INDEX contact_tags_by_tag ON contact_tags (tag, contact_id);

CREATE TABLE consent_events (
    id               INTEGER PRIMARY KEY,
    contact_id       INTEGER NOT NULL REFERENCES contacts (id),
    marketing_opt_in INTEGER NOT NULL CHECK (marketing_opt_in IN (0, 1)),
    source           TEXT NOT NULL,
    actor            TEXT,
    note             TEXT,
    at               TEXT NOT NULL
);
CREATE INDEX consent_events_by_contact ON consent_events (contact_id, id);

-- The ledger is evidence of consent: it only grows.
CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events
BEGIN
    SELECT RAISE(ABORT, 'the consent ledger is append-only');
END;
CREATE TRIGGER consent_events_no_delete BEFORE DELETE ON consent_events
BEGIN
    SELECT RAISE(ABORT, 'the consent ledger is append-only');
END;

CREATE TABLE templates (
    name       TEXT NOT NULL,
    language   TEXT NOT NULL,
    category   TEXT NOT NULL CHECK (category IN ('MARKETING', 'UTILITY', 'AUTHENTICATION')),
    definition TEXT NOT NULL,  -- the Template model as JSON
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (name, language)
);

CREATE TABLE messages (
    id             TEXT PRIMARY KEY,
    direction      TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    channel        TEXT,
    contact_id     INTEGER NOT NULL REFERENCES contacts (id),
    kind           TEXT NOT NULL,
    text           TEXT,
    template       TEXT,  -- {"name", "language", "params"} as JSON
    payload        TEXT,  -- the wire body as JSON
    status         TEXT NOT NULL,
    failure_code   TEXT,
    failure_reason TEXT,
    wamid          TEXT UNIQUE,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX messages_by_contact ON messages (contact_id, created_at);
CREATE INDEX messages_by_created ON messages (created_at);

CREATE TABLE message_statuses (
    id             INTEGER PRIMARY KEY,
    message_id     TEXT NOT NULL REFERENCES messages (id),
    status         TEXT NOT NULL,
    at             TEXT NOT NULL,
    failure_code   TEXT,
    failure_reason TEXT,
    details        TEXT
);
CREATE INDEX message_statuses_by_message ON message_statuses (message_id, id);

CREATE TABLE conversations (
    contact_id      INTEGER PRIMARY KEY REFERENCES contacts (id),
    owner           TEXT NOT NULL DEFAULT 'bot' CHECK (owner IN ('bot', 'agent')),
    agent           TEXT,
    last_inbound_at TEXT,
    updated_at      TEXT NOT NULL
);
CREATE INDEX conversations_by_activity ON conversations (updated_at);

CREATE TABLE app_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
