-- Several processes on one database: the inbound hand-offs' leases, and which worker
-- sends for each business number. (Announcements need no table here: they are
-- NOTIFY'd inside the transaction and LISTENed for on one connection per process.)

-- The dispatcher that is handing a contact's head hand-off over, and until when (kept
-- once handled: who handed it over).
ALTER TABLE inbound_handoffs ADD COLUMN lease_owner TEXT COLLATE "C";
ALTER TABLE inbound_handoffs ADD COLUMN lease_until TIMESTAMPTZ;
CREATE INDEX inbound_handoffs_pending_by_contact ON inbound_handoffs (contact_id, message_id)
    WHERE handled_at IS NULL;
CREATE INDEX inbound_handoffs_by_contact ON inbound_handoffs (contact_id, message_id);

-- The worker that sends for a business number (its rate limits are that worker's), and
-- until when; renewed while the worker runs, taken over once it lapses.
CREATE TABLE number_leases (
    phone_number_id TEXT COLLATE "C" PRIMARY KEY,
    owner           TEXT COLLATE "C" NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX number_leases_by_owner ON number_leases (owner);
