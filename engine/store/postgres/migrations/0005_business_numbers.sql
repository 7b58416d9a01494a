-- Several business numbers: each number with its throughput and health, the 24-hour
-- window per contact and number, and the number each conversation was last written to.

CREATE TABLE business_numbers (
    phone_number_id      TEXT COLLATE "C" PRIMARY KEY,
    display_phone_number TEXT COLLATE "C" NOT NULL,
    display_digits       TEXT COLLATE "C" NOT NULL,  -- for Meta's health updates
    rate_limit           INTEGER CHECK (rate_limit IS NULL OR rate_limit > 0),
    quality_rating       TEXT COLLATE "C" NOT NULL DEFAULT 'UNKNOWN',
    messaging_limit_tier TEXT COLLATE "C",
    flagged              BOOLEAN NOT NULL DEFAULT false,
    registered_seq       BIGINT GENERATED ALWAYS AS IDENTITY,  -- the lowest is the default
    registered_at        TIMESTAMPTZ NOT NULL,
    health_updated_at    TIMESTAMPTZ
);
CREATE INDEX business_numbers_by_display ON business_numbers (display_digits);

-- The customer-service window of each contact with each business number.
CREATE TABLE number_windows (
    contact_id      BIGINT NOT NULL REFERENCES contacts (id),
    phone_number_id TEXT COLLATE "C" NOT NULL,
    last_inbound_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (contact_id, phone_number_id)
);

-- The number the customer last wrote to: the bot and the agents answer from it.
ALTER TABLE conversations ADD COLUMN last_phone_number_id TEXT COLLATE "C";
-- The number a broadcast sends from (a sequence keeps its own in its definition).
ALTER TABLE broadcasts ADD COLUMN phone_number_id TEXT COLLATE "C";
-- Business-initiated sends of a number in the last 24 hours (its daily limit).
CREATE INDEX messages_by_number ON messages (phone_number_id, created_at)
    WHERE direction = 'outbound';
