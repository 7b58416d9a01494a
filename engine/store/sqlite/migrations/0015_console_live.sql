-- The agents' console, live and per agent: what each agent has read, one message per
-- composed intent, and the feed of desk changes that the console pushes to open pages.

-- The last message each agent has seen in each conversation: later inbound messages
-- are that agent's unread ones (message ids sort by the time they were stored, so a
-- message delivered late still counts as new).
CREATE TABLE agent_reads (
    agent        TEXT NOT NULL,
    contact_id   INTEGER NOT NULL REFERENCES contacts (id),
    last_read_id TEXT NOT NULL,
    read_at      TEXT NOT NULL,
    PRIMARY KEY (agent, contact_id)
) WITHOUT ROWID;

-- The key the compose box (or a REST client) gives one composed message: a repeat of
-- the same key by the same agent finds the first message instead of sending again.
ALTER TABLE compose_messages ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX compose_messages_by_key ON compose_messages (agent, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- What changed on the desk, in commit order: a message added or moved to a new status,
-- a conversation that changed hands, an agent who read a conversation (agent set).
-- Written by triggers so that every writer (webhook, sender, flows, campaigns) is
-- covered; each change also moves the 'desk' announcement so watching pages wake.
CREATE TABLE desk_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id INTEGER NOT NULL,
    message_id TEXT,
    added      INTEGER NOT NULL DEFAULT 0,  -- 1: the message was added (not moved)
    agent      TEXT,
    at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX desk_changes_by_age ON desk_changes (at);
INSERT INTO announcements (topic, seq) VALUES ('desk', 0) ON CONFLICT (topic) DO NOTHING;

CREATE TRIGGER desk_message_added AFTER INSERT ON messages
BEGIN
    INSERT INTO desk_changes (contact_id, message_id, added) VALUES (NEW.contact_id, NEW.id, 1);
    UPDATE announcements SET seq = seq + 1 WHERE topic = 'desk';
END;

CREATE TRIGGER desk_message_moved AFTER UPDATE OF status ON messages
WHEN NEW.status IS NOT OLD.status
BEGIN
    INSERT INTO desk_changes (contact_id, message_id) VALUES (NEW.contact_id, NEW.id);
    UPDATE announcements SET seq = seq + 1 WHERE topic = 'desk';
END;

CREATE TRIGGER desk_conversation_added AFTER INSERT ON conversations
BEGIN
    INSERT INTO desk_changes (contact_id) VALUES (NEW.contact_id);
    UPDATE announcements SET seq = seq + 1 WHERE topic = 'desk';
END;

CREATE TRIGGER desk_conversation_moved AFTER UPDATE OF owner, agent ON conversations
WHEN NEW.owner IS NOT OLD.owner OR NEW.agent IS NOT OLD.agent
BEGIN
    INSERT INTO desk_changes (contact_id) VALUES (NEW.contact_id);
    UPDATE announcements SET seq = seq + 1 WHERE topic = 'desk';
END;

CREATE TRIGGER desk_agent_read AFTER INSERT ON agent_reads
BEGIN
    INSERT INTO desk_changes (contact_id, agent) VALUES (NEW.contact_id, NEW.agent);
    UPDATE announcements SET seq = seq + 1 WHERE topic = 'desk';
END;

CREATE TRIGGER desk_agent_read_again AFTER UPDATE OF last_read_id ON agent_reads
WHEN NEW.last_read_id IS NOT OLD.last_read_id
BEGIN
    INSERT INTO desk_changes (contact_id, agent) VALUES (NEW.contact_id, NEW.agent);
    UPDATE announcements SET seq = seq + 1 WHERE topic = 'desk';
END;
