-- Opt-out intents read in customers' own words: the latest one per contact, asked about
-- with reply buttons or suggested to the agent who owns the conversation, with its answer.
CREATE TABLE consent_intents (
    contact_id  BIGINT PRIMARY KEY REFERENCES contacts (id),
    message_id  TEXT COLLATE "C" NOT NULL,
    wamid       TEXT COLLATE "C",
    text        TEXT NOT NULL,
    language    TEXT COLLATE "C" NOT NULL,
    evidence    TEXT NOT NULL,
    mode        TEXT COLLATE "C" NOT NULL CHECK (mode IN ('asked', 'suggested')),
    raised_at   TIMESTAMPTZ NOT NULL,
    answer      TEXT COLLATE "C" CHECK (answer IN ('stop', 'keep', 'agent')),
    answered_at TIMESTAMPTZ
);
