-- Campaigns: broadcasts, sequences (drip campaigns), and the due work that plans them.
-- Their messages are ordinary outbound rows of the outbox (channel broadcast / sequence);
-- these tables say which broadcast or enrolment each one belongs to. Timestamps as in 0001.

CREATE TABLE broadcasts (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    template           TEXT NOT NULL,  -- {"name", "language", "params"} as JSON
    category           TEXT NOT NULL CHECK (category IN ('MARKETING', 'UTILITY', 'AUTHENTICATION')),
    -- {"tags", "tags_match", "attributes", "contacts"}: "contacts" counts the explicit
    -- contacts, which are rows of broadcast_contacts.
    audience           TEXT NOT NULL CHECK (json_valid(audience)),
    opted_in_only      INTEGER NOT NULL CHECK (opted_in_only IN (0, 1)),
    state              TEXT NOT NULL
                       CHECK (state IN ('scheduled', 'sending', 'paused', 'completed', 'cancelled')),
    send_at            TEXT NOT NULL,
    -- The audience as counted when the broadcast was created (planning counts again).
    total              INTEGER NOT NULL,
    will_send          INTEGER NOT NULL,
    excluded_opted_out INTEGER NOT NULL,
    quality_risk       INTEGER NOT NULL,  -- opted-out recipients sent to with the toggle off
    planned_until      INTEGER NOT NULL DEFAULT 0,  -- the audience is planned up to this contact id
    planned            INTEGER NOT NULL DEFAULT 0,  -- message rows planned so far
    planning_done      INTEGER NOT NULL DEFAULT 0 CHECK (planning_done IN (0, 1)),
    guard              TEXT NOT NULL DEFAULT 'watching'
                       CHECK (guard IN ('watching', 'tripped', 'overridden')),
    paused_by          TEXT,  -- 'guard', or who paused it
    paused_reason      TEXT,
    paused_at          TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    finished_at        TEXT
);
CREATE INDEX broadcasts_by_state ON broadcasts (state, send_at);

-- The contacts a broadcast names one by one.
CREATE TABLE broadcast_contacts (
    broadcast_id TEXT NOT NULL REFERENCES broadcasts (id),
    contact_id   INTEGER NOT NULL REFERENCES contacts (id),
    PRIMARY KEY (broadcast_id, contact_id)
) WITHOUT ROWID;

-- One message per recipient of a broadcast: a contact is planned once per broadcast.
CREATE TABLE broadcast_recipients (
    broadcast_id TEXT NOT NULL REFERENCES broadcasts (id),
    contact_id   INTEGER NOT NULL,
    message_id   TEXT NOT NULL,
    PRIMARY KEY (broadcast_id, contact_id)
) WITHOUT ROWID;
-- The quality guard reads a broadcast's first messages in the order they were planned.
CREATE INDEX broadcast_recipients_by_message ON broadcast_recipients (broadcast_id, message_id);

CREATE TABLE sequences (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    version    INTEGER NOT NULL,  -- +1 at every edit; timers set under an older one are stale
    definition TEXT NOT NULL CHECK (json_valid(definition)),  -- {"steps", "send_window"}
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE sequence_enrolments (
    id           TEXT PRIMARY KEY,
    sequence_id  TEXT NOT NULL REFERENCES sequences (id),
    contact_id   INTEGER NOT NULL REFERENCES contacts (id),
    state        TEXT NOT NULL CHECK (state IN ('active', 'completed', 'unenrolled')),
    source       TEXT NOT NULL,        -- api, csv, tag, flow:<flow id>
    next_step    INTEGER NOT NULL,     -- the index of the step that runs next
    anchor_at    TEXT NOT NULL,        -- the next step's delay counts from here
    enrolled_at  TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    finished_at  TEXT
);
-- A contact is in a sequence at most once at a time.
CREATE UNIQUE INDEX sequence_enrolments_active ON sequence_enrolments (sequence_id, contact_id)
    WHERE state = 'active';
CREATE INDEX sequence_enrolments_by_contact ON sequence_enrolments (contact_id, sequence_id, id);

-- What each step of an enrolment did: its message, or why none was sent.
CREATE TABLE sequence_step_runs (
    enrolment_id   TEXT NOT NULL REFERENCES sequence_enrolments (id),
    step_index     INTEGER NOT NULL,
    version        INTEGER NOT NULL,  -- the sequence version the step ran under
    due_at         TEXT NOT NULL,
    ran_at         TEXT NOT NULL,
    message_id     TEXT REFERENCES messages (id),
    failure_code   TEXT,
    failure_reason TEXT,
    PRIMARY KEY (enrolment_id, step_index)  -- a step runs once per enrolment
) WITHOUT ROWID;

-- Due work, claimed like the outbox: a lease (owner + deadline) taken in a committed
-- write, so several workers never run one item twice and a stopped worker's item
-- comes back when its lease expires. One item per broadcast being planned and one
-- timer per active enrolment.
CREATE TABLE campaign_work (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('broadcast', 'sequence_step')),
    subject     TEXT NOT NULL,    -- the broadcast id, or the enrolment id
    due_at      TEXT NOT NULL,
    step        INTEGER,          -- sequence_step: the step the timer fires
    version     INTEGER,          -- sequence_step: the sequence version it was set under
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until TEXT,
    last_error  TEXT,
    UNIQUE (kind, subject)
);
CREATE INDEX campaign_work_due ON campaign_work (due_at, id);
