-- Inbound: the hand-off of each customer message to whoever answers it, and delivery
-- statuses that arrived before the message they describe was known.

-- One row per stored inbound message. handled_at stays NULL until the conversation
-- handler has returned (or the message needed no handler), so a crash loses nothing:
-- the dispatcher picks up every pending row when it starts.
CREATE TABLE inbound_handoffs (
    message_id  TEXT PRIMARY KEY REFERENCES messages (id),
    contact_id  INTEGER NOT NULL REFERENCES contacts (id),
    new_contact INTEGER NOT NULL CHECK (new_contact IN (0, 1)),
    input       TEXT NOT NULL,  -- the CustomerInput the handler is given, as JSON
    attempts    INTEGER NOT NULL DEFAULT 0,
    outcome     TEXT,  -- bot, agent, no_handler, consumed, system, failed
    handled_at  TEXT,
    CHECK ((outcome IS NULL) = (handled_at IS NULL))
);
CREATE INDEX inbound_handoffs_pending ON inbound_handoffs (message_id)
    WHERE handled_at IS NULL;

-- Meta may report a status before the sender has recorded the wamid it got back; such
-- statuses wait here and are applied once the wamid is known.
CREATE TABLE unmatched_statuses (
    id              INTEGER PRIMARY KEY,
    wamid           TEXT NOT NULL,
    status          TEXT NOT NULL,
    at              TEXT NOT NULL,
    failure_code    TEXT,
    failure_reason  TEXT,
    details         TEXT,
    consent_applied INTEGER NOT NULL DEFAULT 0 CHECK (consent_applied IN (0, 1)),
    received_at     TEXT NOT NULL
);
CREATE INDEX unmatched_statuses_by_wamid ON unmatched_statuses (wamid, id);
CREATE INDEX unmatched_statuses_by_age ON unmatched_statuses (received_at);
