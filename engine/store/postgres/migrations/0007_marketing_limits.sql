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
