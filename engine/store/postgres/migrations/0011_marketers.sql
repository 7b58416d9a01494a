-- The marketers' console: a marketer role, and a broadcast created once per form.
ALTER TABLE agents DROP CONSTRAINT agents_role_check;
ALTER TABLE agents ADD CONSTRAINT agents_role_check
    CHECK (role IN ('agent', 'admin', 'marketer'));

-- The console's "New broadcast" form carries a key of its own: a second submit of the
-- same form (a double click, a reload) finds the broadcast the first one made.
CREATE TABLE broadcast_requests (
    idempotency_key TEXT COLLATE "C" PRIMARY KEY,
    broadcast_id    TEXT COLLATE "C" NOT NULL REFERENCES broadcasts (id)
);
