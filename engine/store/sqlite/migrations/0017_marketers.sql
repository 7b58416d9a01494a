-- The marketers' console: a marketer role, and a broadcast created once per form.
--
-- The agents table's CHECK allows only 'agent' and 'admin', and SQLite cannot change a
-- CHECK without rebuilding the table: a marketer is marked in a column of its own (its
-- role column says 'agent'); the store reads the two as one role.
ALTER TABLE agents ADD COLUMN marketer INTEGER NOT NULL DEFAULT 0 CHECK (marketer IN (0, 1));

-- The console's "New broadcast" form carries a key of its own: a second submit of the
-- same form (a double click, a reload) finds the broadcast the first one made.
CREATE TABLE broadcast_requests (
    idempotency_key TEXT PRIMARY KEY,
    broadcast_id    TEXT NOT NULL REFERENCES broadcasts (id)
) WITHOUT ROWID;
