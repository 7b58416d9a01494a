-- The marketing limits: quiet hours in the contact's local time and a frequency cap.

-- The quiet hours a queued MARKETING message keeps (HH:MM-HH:MM: the setting at enqueue,
-- or its broadcast's own), so the sender asks the same rule again; NULL: none.
ALTER TABLE messages ADD COLUMN quiet_hours TEXT COLLATE "C";
-- When a message held for quiet hours may go (it is queued, due then); kept to show it.
ALTER TABLE messages ADD COLUMN held_until TIMESTAMPTZ;
-- When the sender last claimed the message to post it: the moment a MARKETING template
-- counts towards the frequency cap (a `sending` row is the reservation of its place).
ALTER TABLE messages ADD COLUMN handed_over_at TIMESTAMPTZ;
CREATE INDEX messages_marketing_by_contact ON messages (contact_id, handed_over_at)
    WHERE content_kind = 'MARKETING';

-- The ledger keeps each event's evidence (the customer's message id and text, a button's
-- payload, the failed message of a 131050, the agent, the API caller).
ALTER TABLE consent_events ADD COLUMN evidence JSONB;

-- The ledger still only grows; the one change it allows is erasing a person's words
-- from it (note and evidence set to NULL), which keeps every value, source and time.
CREATE FUNCTION consent_events_erase_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.note IS NULL AND NEW.evidence IS NULL
       AND (NEW.id, NEW.contact_id, NEW.marketing_opt_in, NEW.source, NEW.at)
           = (OLD.id, OLD.contact_id, OLD.marketing_opt_in, OLD.source, OLD.at)
       AND NEW.actor IS NOT DISTINCT FROM OLD.actor THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the consent ledger is append-only' USING ERRCODE = 'restrict_violation';
END $$;
DROP TRIGGER consent_events_no_update ON consent_events;
CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION consent_events_erase_only();

-- An erased person: the contact row stays (the ledger refers to it) without anything
-- that names them; a new contact with their number or user id starts opted out.
ALTER TABLE contacts ADD COLUMN erased_at TIMESTAMPTZ;
CREATE TABLE suppressions (
    key        TEXT COLLATE "C" PRIMARY KEY,  -- HMAC-SHA256 of "wa_id:<n>" / "user_id:<id>"
    created_at TIMESTAMPTZ NOT NULL
);

-- A broadcast's own quiet hours (own_quiet_hours; quiet_hours NULL: it ignores them);
-- own_quiet_hours false: MARKETING_QUIET_HOURS applies.
ALTER TABLE broadcasts ADD COLUMN quiet_hours TEXT COLLATE "C";
ALTER TABLE broadcasts ADD COLUMN own_quiet_hours BOOLEAN NOT NULL DEFAULT FALSE;
