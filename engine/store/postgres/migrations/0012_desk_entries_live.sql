-- The desk's own entries (private notes, assignments, resolved and reopened) and the
-- resolved state reach open console pages live, as messages do: a new entry is a desk
-- change of its own, and a conversation resolved or reopened is a change of the
-- conversation.

-- The desk entry added (set only on those changes).
ALTER TABLE desk_changes ADD COLUMN entry_id BIGINT;

CREATE OR REPLACE FUNCTION desk_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'messages' THEN
        IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
            RETURN NULL;
        END IF;
        INSERT INTO desk_changes (contact_id, message_id, added)
            VALUES (NEW.contact_id, NEW.id, TG_OP = 'INSERT');
    ELSIF TG_TABLE_NAME = 'conversations' THEN
        IF TG_OP = 'UPDATE' AND NEW.owner IS NOT DISTINCT FROM OLD.owner
           AND NEW.agent IS NOT DISTINCT FROM OLD.agent
           AND NEW.resolved_at IS NOT DISTINCT FROM OLD.resolved_at THEN
            RETURN NULL;
        END IF;
        INSERT INTO desk_changes (contact_id) VALUES (NEW.contact_id);
    ELSIF TG_TABLE_NAME = 'desk_entries' THEN
        INSERT INTO desk_changes (contact_id, entry_id) VALUES (NEW.contact_id, NEW.id);
    ELSE
        IF TG_OP = 'UPDATE' AND NEW.last_read_id IS NOT DISTINCT FROM OLD.last_read_id THEN
            RETURN NULL;
        END IF;
        INSERT INTO desk_changes (contact_id, agent) VALUES (NEW.contact_id, NEW.agent);
    END IF;
    -- Same payload within one transaction: PostgreSQL sends it once, at commit.
    PERFORM pg_notify('optinflow', 'desk database');
    RETURN NULL;
END;
$$;

-- A trigger's columns cannot be altered: it is made again with resolved_at.
DROP TRIGGER desk_conversation_changes ON conversations;
CREATE TRIGGER desk_conversation_changes AFTER INSERT OR UPDATE OF owner, agent, resolved_at
    ON conversations FOR EACH ROW EXECUTE FUNCTION desk_change();
CREATE TRIGGER desk_entry_changes AFTER INSERT ON desk_entries
    FOR EACH ROW EXECUTE FUNCTION desk_change();
