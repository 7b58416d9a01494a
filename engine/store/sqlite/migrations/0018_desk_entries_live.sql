-- The desk's own entries (private notes, assignments, resolved and reopened) and the
-- resolved state reach open console pages live, as messages do: a new entry is a desk
-- change of its own, and a conversation resolved or reopened is a change of the
-- conversation.

-- The desk entry added (set only on those changes).
ALTER TABLE desk_changes ADD COLUMN entry_id INTEGER;

CREATE TRIGGER desk_entry_added AFTER INSERT ON desk_entries
BEGIN
    INSERT INTO desk_changes (contact_id, entry_id) VALUES (NEW.contact_id, NEW.id);
    UPDATE announcements SET seq = seq + 1 WHERE topic = 'desk';
END;

-- A trigger's columns cannot be altered in SQLite: it is made again with resolved_at.
DROP TRIGGER desk_conversation_moved;
CREATE TRIGGER desk_conversation_moved AFTER UPDATE OF owner, agent, resolved_at ON conversations
WHEN NEW.owner IS NOT OLD.owner OR NEW.agent IS NOT OLD.agent
    OR NEW.resolved_at IS NOT OLD.resolved_at
BEGIN
    INSERT INTO desk_changes (contact_id) VALUES (NEW.contact_id);
    UPDATE announcements SET seq = seq + 1 WHERE topic = 'desk';
END;
