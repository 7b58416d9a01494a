-- The outbox: outbound message rows carry what the sender needs to claim, send and
-- retry them, and integrations' callback deliveries are queued beside them.

ALTER TABLE messages ADD COLUMN priority INTEGER NOT NULL DEFAULT 2;  -- 0 replies .. 2 bulk
ALTER TABLE messages ADD COLUMN recipient TEXT;           -- the address Meta sends to
ALTER TABLE messages ADD COLUMN phone_number_id TEXT;     -- the sending number; NULL: the default
ALTER TABLE messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN next_attempt_at TEXT;
ALTER TABLE messages ADD COLUMN lease_owner TEXT;
ALTER TABLE messages ADD COLUMN lease_until TEXT;
ALTER TABLE messages ADD COLUMN last_error TEXT;
-- Attempts whose outcome we could not know (the process stopped, or the connection broke,
-- during the HTTP call) and that were tried again: the customer may have it twice.
ALTER TABLE messages ADD COLUMN ambiguous_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN idempotency_key TEXT;
ALTER TABLE messages ADD COLUMN callback_url TEXT;
-- The exact JSON posted to the Cloud API, made at enqueue; NULL: built at send time.
ALTER TABLE messages ADD COLUMN request_body TEXT;

UPDATE messages SET
    next_attempt_at = created_at,
    recipient = (SELECT coalesce(c.wa_id, c.user_id) FROM contacts c WHERE c.id = messages.contact_id)
WHERE status IN ('queued', 'sending');

CREATE INDEX messages_due ON messages (priority, next_attempt_at, id) WHERE status = 'queued';
CREATE INDEX messages_leased ON messages (lease_until) WHERE status = 'sending';
CREATE INDEX messages_pending_by_contact ON messages (contact_id, id)
    WHERE status IN ('queued', 'sending');
CREATE UNIQUE INDEX messages_by_idempotency_key ON messages (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE callback_deliveries (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT NOT NULL REFERENCES messages (id),
    url             TEXT NOT NULL,
    status          TEXT NOT NULL,  -- the message status being reported
    at              TEXT NOT NULL,
    failure_code    TEXT,
    failure_reason  TEXT,
    wamid           TEXT,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'abandoned')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_until     TEXT,
    last_error      TEXT,
    finished_at     TEXT
);
CREATE INDEX callback_deliveries_due ON callback_deliveries (next_attempt_at, id)
    WHERE state = 'pending';
CREATE INDEX callback_deliveries_pending_by_message ON callback_deliveries (message_id, id)
    WHERE state = 'pending';
CREATE INDEX callback_deliveries_by_message ON callback_deliveries (message_id);

-- Every change of status of a message with a callback URL queues a delivery in the same
-- transaction, whichever path changed it (the sender, the webhook, anything later), and
-- so does a message stored already final (failed at enqueue) or given its URL then.
CREATE TRIGGER messages_status_callbacks_on_insert
AFTER INSERT ON messages
WHEN NEW.callback_url IS NOT NULL
    AND NEW.status IN ('sent', 'delivered', 'read', 'played', 'failed', 'skipped')
BEGIN
    INSERT INTO callback_deliveries
        (message_id, url, status, at, failure_code, failure_reason, wamid, next_attempt_at)
    VALUES
        (NEW.id, NEW.callback_url, NEW.status, NEW.updated_at, NEW.failure_code,
         NEW.failure_reason, NEW.wamid, '1970-01-01T00:00:00.000000Z');  -- due at once
END;

CREATE TRIGGER messages_status_callbacks
AFTER UPDATE OF status, callback_url ON messages
WHEN NEW.callback_url IS NOT NULL
    AND (NEW.status IS NOT OLD.status OR OLD.callback_url IS NULL)
    AND NEW.status IN ('sent', 'delivered', 'read', 'played', 'failed', 'skipped')
BEGIN
    INSERT INTO callback_deliveries
        (message_id, url, status, at, failure_code, failure_reason, wamid, next_attempt_at)
    VALUES
        (NEW.id, NEW.callback_url, NEW.status, NEW.updated_at, NEW.failure_code,
         NEW.failure_reason, NEW.wamid, '1970-01-01T00:00:00.000000Z');  -- due at once
END;
