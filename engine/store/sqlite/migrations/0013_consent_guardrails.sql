-- The marketing limits: quiet hours in the contact's local time and a frequency cap.

-- The quiet hours a queued MARKETING message keeps (HH:MM-HH:MM: the setting at enqueue,
-- or its broadcast's own), so the sender asks the same rule again; NULL: none.
ALTER TABLE messages ADD COLUMN quiet_hours TEXT;
-- When a message held for quiet hours may go (it is queued, due then); kept to show it.
ALTER TABLE messages ADD COLUMN held_until TEXT;
-- When the sender last claimed the message to post it: the moment a MARKETING template
-- counts towards the frequency cap (a `sending` row is the reservation of its place).
ALTER TABLE messages ADD COLUMN handed_over_at TEXT;
CREATE INDEX messages_marketing_by_contact ON messages (contact_id, handed_over_at)
    WHERE content_kind = 'MARKETING';

-- The ledger keeps each event's evidence (JSON: the customer's message id and text, a
-- button's payload, the failed message of a 131050, the agent, the API caller).
ALTER TABLE consent_events ADD COLUMN evidence TEXT CHECK (evidence IS NULL OR json_valid(evidence));

-- The ledger still only grows; the one change it allows is erasing a person's words
-- from it (note and evidence set to NULL), which keeps every value, source and time.
DROP TRIGGER consent_events_no_update;
CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events
WHEN NOT (NEW.note IS NULL AND NEW.evidence IS NULL AND NEW.id = OLD.id
          AND NEW.contact_id = OLD.contact_id AND NEW.marketing_opt_in = OLD.marketing_opt_in
          AND NEW.source = OLD.source AND NEW.actor IS OLD.actor AND NEW.at = OLD.at)
BEGIN
    SELECT RAISE(ABORT, 'the consent ledger is append-only');
END;

-- An erased person: the contact row stays (the ledger refers to it) without anything
-- that names them; a new contact with their number or user id starts opted out.
ALTER TABLE contacts ADD COLUMN erased_at TEXT;
CREATE TABLE suppressions (
    key        TEXT PRIMARY KEY,  -- HMAC-SHA256 of "wa_id:<number>" or "user_id:<id>"
    created_at TEXT NOT NULL
) WITHOUT ROWID;

-- A broadcast's own quiet hours (own_quiet_hours = 1; quiet_hours NULL: it ignores them);
-- own_quiet_hours = 0: MARKETING_QUIET_HOURS applies.
ALTER TABLE broadcasts ADD COLUMN quiet_hours TEXT;
ALTER TABLE broadcasts ADD COLUMN own_quiet_hours INTEGER NOT NULL DEFAULT 0
    CHECK (own_quiet_hours IN (0, 1));
