-- Templates as Meta runs them: the status and id Meta gives each template (synced, and
-- kept current by the template webhooks), templates Meta told us of that we do not
-- know, messages waiting for a paused template, messages deferred by Meta's per-user
-- marketing limit (131049), and what Meta charges for each message.
ALTER TABLE templates ADD COLUMN status TEXT COLLATE "C" NOT NULL DEFAULT 'APPROVED';
ALTER TABLE templates ADD COLUMN meta_id TEXT COLLATE "C";
CREATE INDEX templates_by_meta_id ON templates (meta_id) WHERE meta_id IS NOT NULL;

CREATE TABLE unknown_templates (
    name          TEXT COLLATE "C" NOT NULL,
    language      TEXT COLLATE "C" NOT NULL,
    meta_id       TEXT COLLATE "C",
    status        TEXT COLLATE "C",
    category      TEXT COLLATE "C",
    quality_score TEXT COLLATE "C",
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (name, language)
);

-- "name/language" of the template a queued message waits for (not due meanwhile).
ALTER TABLE messages ADD COLUMN template_wait TEXT COLLATE "C";
CREATE INDEX messages_waiting_for_template ON messages (template_wait)
    WHERE template_wait IS NOT NULL;

ALTER TABLE messages ADD COLUMN deferrals INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_deferred ON messages (next_attempt_at) WHERE status = 'deferred';

ALTER TABLE messages ADD COLUMN billable BOOLEAN;
ALTER TABLE messages ADD COLUMN pricing_model TEXT COLLATE "C";
ALTER TABLE messages ADD COLUMN pricing_type TEXT COLLATE "C";
ALTER TABLE messages ADD COLUMN pricing_category TEXT COLLATE "C";
