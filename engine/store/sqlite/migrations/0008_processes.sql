-- Several processes on one database: announcements that wake them, the inbound
-- hand-offs' leases, and which worker sends for each business number.

-- One counter per topic, moved by every transaction that announces it; each process
-- watches the counters and wakes its subscribers when one moves.
CREATE TABLE announcements (
    topic TEXT PRIMARY KEY,
    seq   INTEGER NOT NULL
);

-- The dispatcher that is handing a contact's head hand-off over, and until when (kept
-- once handled: who handed it over).
ALTER TABLE inbound_handoffs ADD COLUMN lease_owner TEXT;
ALTER TABLE inbound_handoffs ADD COLUMN lease_until TEXT;
CREATE INDEX inbound_handoffs_pending_by_contact ON inbound_handoffs (contact_id, message_id)
    WHERE handled_at IS NULL;
CREATE INDEX inbound_handoffs_by_contact ON inbound_handoffs (contact_id, message_id);

-- The worker that sends for a business number (its rate limits are that worker's), and
-- until when; renewed while the worker runs, taken over once it lapses.
CREATE TABLE number_leases (
    phone_number_id TEXT PRIMARY KEY,
    owner           TEXT NOT NULL,
    expires_at      TEXT NOT NULL
);
