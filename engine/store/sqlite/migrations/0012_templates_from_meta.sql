-- Templates as Meta runs them: the status and id Meta gives each template (synced, and
-- kept current by the template webhooks), templates Meta told us of that we do not
-- know, messages waiting for a paused template, messages deferred by Meta's per-user
-- marketing limit (131049), and what Meta charges for each message.
ALTER TABLE templates ADD COLUMN status TEXT NOT NULL DEFAULT 'APPROVED';
ALTER TABLE templates ADD COLUMN meta_id TEXT;
CREATE INDEX templates_by_meta_id ON templates (meta_id) WHERE meta_id IS NOT NULL;

CREATE TABLE unknown_templates (
    name          TEXT NOT NULL,
    language      TEXT NOT NULL,
    meta_id       TEXT,
    status        TEXT,
    category      TEXT,
    quality_score TEXT,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (name, language)
);

-- "name/language" of the template a queued message waits for (not due meanwhile).
ALTER TABLE messages ADD COLUMN template_wait TEXT;
CREATE INDEX messages_waiting_for_template ON messages (template_wait)
    WHERE template_wait IS NOT NULL;

ALTER TABLE messages ADD COLUMN deferrals INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_deferred ON messages (next_attempt_at) WHERE status = 'deferred';

ALTER TABLE messages ADD COLUMN billable INTEGER;
ALTER TABLE messages ADD COLUMN pricing_model TEXT;
ALTER TABLE messages ADD COLUMN pricing_type TEXT;
ALTER TABLE messages ADD COLUMN pricing_category TEXT;
