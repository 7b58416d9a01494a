-- What the marketing opt-in rule was asked when an outbound message was queued, kept on
-- the row so the sender asks it again, with the contact's opt-in of that moment, just
-- before sending: someone who opts out after their message was queued is not sent
-- marketing the rule would now refuse.

-- MARKETING, UTILITY, AUTHENTICATION (a template's category) or free_form (anything
-- else). NULL on inbound rows, and on older outbound rows whose kind is not known.
ALTER TABLE messages ADD COLUMN content_kind TEXT
    CHECK (content_kind IN ('MARKETING', 'UTILITY', 'AUTHENTICATION', 'free_form'));
-- Broadcasts: the "send to contacts who opted in for marketing" toggle (default on).
ALTER TABLE messages ADD COLUMN opted_in_only INTEGER NOT NULL DEFAULT 1
    CHECK (opted_in_only IN (0, 1));
-- Compose box: the agent confirmed a MARKETING template to a contact who opted out.
ALTER TABLE messages ADD COLUMN confirmed_opted_out INTEGER NOT NULL DEFAULT 0
    CHECK (confirmed_opted_out IN (0, 1));

-- Messages still waiting to be sent get what they were queued with, as far as the other
-- tables remember it: the template's category from the catalogue, the broadcast's
-- toggle, the agent's confirmation.
UPDATE messages SET content_kind = coalesce(
    (SELECT t.category FROM templates t
     WHERE t.name = messages.template ->> '$.name'
       AND t.language = messages.template ->> '$.language'),
    CASE WHEN messages.template IS NULL THEN 'free_form' END)
WHERE direction = 'outbound' AND status IN ('queued', 'sending');

UPDATE messages SET opted_in_only = 0
WHERE status IN ('queued', 'sending') AND id IN (
    SELECT r.message_id FROM broadcasts b JOIN broadcast_recipients r ON r.broadcast_id = b.id
    WHERE b.opted_in_only = 0);

UPDATE messages SET confirmed_opted_out = 1
WHERE status IN ('queued', 'sending') AND id IN (
    SELECT message_id FROM compose_messages WHERE confirmed_by IS NOT NULL);
