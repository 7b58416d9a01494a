-- The agents' day at the desk: who a conversation is assigned to and whether it is
-- resolved, private notes and assignments in the timeline, saved replies, and search.

-- Resolved until the customer writes again: a conversation is resolved while
-- resolved_at is set and no inbound message came after it.
ALTER TABLE conversations ADD COLUMN resolved_at TEXT;

-- What agents wrote or did in a conversation that the customer never sees.
CREATE TABLE desk_entries (
    id         INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts (id),
    kind       TEXT NOT NULL CHECK (kind IN ('note', 'assigned', 'resolved', 'reopened')),
    author     TEXT NOT NULL,
    assignee   TEXT,
    text       TEXT,
    at         TEXT NOT NULL
);
CREATE INDEX desk_entries_by_contact ON desk_entries (contact_id, id);

CREATE TABLE saved_replies (
    shortcut   TEXT PRIMARY KEY,
    text       TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Message text search: a trigram index finds any substring of three characters or
-- more, case-insensitively, without reading every message.
CREATE VIRTUAL TABLE message_text_search USING fts5 (
    text, content = 'messages', content_rowid = 'rowid', tokenize = 'trigram'
);
INSERT INTO message_text_search (rowid, text)
    SELECT rowid, text FROM messages WHERE text IS NOT NULL;
CREATE TRIGGER message_text_search_insert AFTER INSERT ON messages
    WHEN new.text IS NOT NULL
BEGIN
    INSERT INTO message_text_search (rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER message_text_search_delete AFTER DELETE ON messages
    WHEN old.text IS NOT NULL
BEGIN
    INSERT INTO message_text_search (message_text_search, rowid, text)
        VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER message_text_search_update AFTER UPDATE OF text ON messages
BEGIN
    INSERT INTO message_text_search (message_text_search, rowid, text)
        SELECT 'delete', old.rowid, old.text WHERE old.text IS NOT NULL;
    INSERT INTO message_text_search (rowid, text)
        SELECT new.rowid, new.text WHERE new.text IS NOT NULL;
END;
