-- Several business numbers: each number with its throughput and health, the 24-hour
-- window per contact and number, and the number each conversation was last written to.

CREATE TABLE business_numbers (
    phone_number_id      TEXT PRIMARY KEY,
    display_phone_number TEXT NOT NULL,
    display_digits       TEXT NOT NULL,  -- the display number's digits, for Meta's health updates
    rate_limit           INTEGER CHECK (rate_limit IS NULL OR rate_limit > 0),
    quality_rating       TEXT NOT NULL DEFAULT 'UNKNOWN',
    messaging_limit_tier TEXT,
    flagged              INTEGER NOT NULL DEFAULT 0 CHECK (flagged IN (0, 1)),
    registered_seq       INTEGER NOT NULL,  -- registration order: the lowest is the default
    registered_at        TEXT NOT NULL,
    health_updated_at    TEXT
);
CREATE INDEX business_numbers_by_display ON business_numbers (display_digits);

-- The customer-service window of each contact with each business number.
CREATE TABLE number_windows (
    contact_id      INTEGER NOT NULL REFERENCES contacts (id),
    phone_number_id TEXT NOT NULL,
    last_inbound_at TEXT NOT NULL,
    PRIMARY KEY (contact_id, phone_number_id)
) WITHOUT ROWID;

-- The number the customer last wrote to: the bot and the agents answer from it.
ALTER TABLE conversations ADD COLUMN last_phone_number_id TEXT;
-- The number a broadcast sends from (a sequence keeps its own in its definition).
ALTER TABLE broadcasts ADD COLUMN phone_number_id TEXT;
-- Business-initiated sends of a number in the last 24 hours (its daily limit).
CREATE INDEX messages_by_number ON messages (phone_number_id, created_at)
    WHERE direction = 'outbound';
