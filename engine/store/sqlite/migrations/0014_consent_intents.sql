-- Opt-out intents read in customers' own words: the latest one per contact, asked about
-- with reply buttons or suggested to the agent who owns the conversation, with its answer.
CREATE TABLE consent_intents (
    contact_id  INTEGER PRIMARY KEY REFERENCES contacts (id),
    message_id  TEXT NOT NULL,
    wamid       TEXT,
    text        TEXT NOT NULL,
    language    TEXT NOT NULL,
    evidence    TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('asked', 'suggested')),
    raised_at   TEXT NOT NULL,
    answer      TEXT CHECK (answer IN ('stop', 'keep', 'agent')),
    answered_at TEXT
);
