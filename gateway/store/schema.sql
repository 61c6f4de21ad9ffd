-- gateway claims store, schema version 8, in SQLite's types (PostgreSQL gets it translated:
-- gateway/store/ddl.py). Migrations: gateway/store/migrations.py.
-- Amounts are integer øre. Times are ISO 8601 text: received_at in UTC, treatment times
-- (dato_tid) in Norwegian local time as the claim carries them.

CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);

-- Every intake, whatever it was: the original bytes are always kept.
CREATE TABLE IF NOT EXISTS received (
    id            INTEGER PRIMARY KEY,
    received_at   TEXT    NOT NULL,
    source        TEXT    NOT NULL,            -- 'spool' (later 'imap:<mailbox>')
    source_ref    TEXT    NOT NULL UNIQUE,     -- the claimed spool file name: unique per intake
    sha256        TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    raw           BLOB    NOT NULL,
    outcome       TEXT    NOT NULL,            -- see gateway.store.sqlite.Outcome
    detail        TEXT,                        -- short English reason, never a national id
    duplicate_of  INTEGER REFERENCES received(id),
    -- the ds:Reference copies of its verified ebXML signature when it asked for a signed
    -- acknowledgment (a JSON array of XML strings): what our acknowledgment acknowledged
    signature_references  TEXT,
    archive_file    TEXT,
    archive_member  TEXT
);
-- archive_file, archive_member: set by `gateway retention archive`, raw is then empty; its
-- bytes (sha256 and size above) are this member of this archive file. No comment may stand
-- between a table's last columns: SQLite's DROP COLUMN (the migration tests) trips on them.
CREATE INDEX IF NOT EXISTS received_sha256 ON received(sha256);

-- A message we understood far enough to know its ids. Unique keys make intake idempotent.
CREATE TABLE IF NOT EXISTS messages (
    id                INTEGER PRIMARY KEY,
    received_id       INTEGER NOT NULL UNIQUE REFERENCES received(id),
    cpa_id            TEXT,
    ebxml_message_id  TEXT,
    conversation_id   TEXT,
    from_her          TEXT,
    to_her            TEXT,
    service           TEXT,
    action            TEXT,
    content_sha256    TEXT,                    -- envelope + payload parts, not mail headers
    payload_sha256    TEXT,                    -- the MsgHead document (unpacked)
    msg_id            TEXT,                    -- MsgHead MsgInfo/MsgId
    msg_type          TEXT,
    sender_her        TEXT,
    sender_name       TEXT,
    gen_date          TEXT,
    apprec_status     INTEGER,                 -- 1 OK, 2 Avvist, 3 OK med feil i delmelding
    ruleset_version   TEXT,
    UNIQUE (cpa_id, ebxml_message_id),
    UNIQUE (sender_her, msg_id)
);

CREATE TABLE IF NOT EXISTS bills (
    id                 INTEGER PRIMARY KEY,
    message_id         INTEGER NOT NULL REFERENCES messages(id),
    position           INTEGER NOT NULL,
    sender_her         TEXT    NOT NULL,
    practitioner_id    TEXT    NOT NULL,       -- HPR number, else the sender's HER id
    guid               TEXT    NOT NULL,
    regning_nr         TEXT    NOT NULL,
    dato_tid           TEXT    NOT NULL,
    kreditering        INTEGER NOT NULL,
    betalt_egenandel   INTEGER NOT NULL,
    kode_egenandel     TEXT,
    patient_id         TEXT    NOT NULL,       -- national identity number: health data, never logged
    patient_id_type    TEXT    NOT NULL,
    patient_birth_date TEXT,                   -- from the national id, for statistics
    patient_sex        TEXT CHECK (patient_sex IN ('K', 'M')),
    practitioner_type  TEXT,                   -- tannlege, lege, psykolog, lab, … (if known)
    sum_refusjon_ore   INTEGER NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN ('godkjent', 'avvist')),
    approved_ore       INTEGER NOT NULL,
    credited_by        INTEGER REFERENCES bills(id),
    -- 1 while this is an effectively approved original that no credit has consumed: set on
    -- insert, cleared by a credit, and kept in step with case workers' overrides.
    live               INTEGER NOT NULL DEFAULT 0,
    -- 1 when a rule sent the bill to manual control (kontrolleres manuelt): a case worker
    -- should look at it before it is paid.
    manual             INTEGER NOT NULL DEFAULT 0,
    UNIQUE (message_id, position)
);
-- At most one live approved original per sender and Guid: the last line of defence against
-- paying a bill twice, whatever the rules say.
CREATE UNIQUE INDEX IF NOT EXISTS bills_one_live_approval
    ON bills(sender_her, guid) WHERE live = 1;
CREATE INDEX IF NOT EXISTS bills_guid ON bills(sender_her, guid);
CREATE INDEX IF NOT EXISTS bills_patient_time ON bills(patient_id, dato_tid);
CREATE INDEX IF NOT EXISTS bills_practitioner_time ON bills(practitioner_id, dato_tid);

CREATE TABLE IF NOT EXISTS bill_lines (
    id           INTEGER PRIMARY KEY,
    bill_id      INTEGER NOT NULL REFERENCES bills(id),
    position     INTEGER NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('takst', 'diagnose', 'prosedyre', 'tann')),
    code         TEXT    NOT NULL,
    code_system  TEXT,
    amount_ore   INTEGER,
    antall       INTEGER
);
CREATE INDEX IF NOT EXISTS bill_lines_bill ON bill_lines(bill_id);

-- Every rule that fired, with its inputs, so a decision can be explained and replayed.
CREATE TABLE IF NOT EXISTS findings (
    id            INTEGER PRIMARY KEY,
    message_id    INTEGER NOT NULL REFERENCES messages(id),
    bill_id       INTEGER REFERENCES bills(id),
    rule_id       TEXT    NOT NULL,
    rule_version  INTEGER NOT NULL,
    code          TEXT    NOT NULL,
    severity      TEXT    NOT NULL,
    text          TEXT    NOT NULL,
    facts         TEXT    NOT NULL             -- JSON object
);
CREATE INDEX IF NOT EXISTS findings_message ON findings(message_id);

-- The transactional outbox: every message we send is a row, written in the same transaction as
-- what caused it (a decision, or a payout run), and delivered after the commit by the outbox in
-- use (files, or SMTP). A row is never deleted.
--   state: pending -> delivered; a permanent failure (SMTP 5xx) -> dead, which an operator
--          requeues (back to pending) or discards.
--   ack_state: for messages we send with ebXML AckRequested (AppRecs, payout decisions):
--          awaiting until the partner's Acknowledgment (acknowledged) or MessageError (error)
--          arrives; resent per the CPA's Retries/RetryInterval; expired after its TimeToLive.
--   expires_at: UTC; after this, no resend (TimeToLive).
--   claimed_by, claimed_at: several instances on one database: the instance delivering a
--          pending row claims it (its engine's instance name, and when, UTC); the claim of an
--          instance no longer alive is void. (No comments among the last columns: SQLite's
--          DROP COLUMN, which a migration test uses, trips over them.)
CREATE TABLE IF NOT EXISTS replies (
    id                 INTEGER PRIMARY KEY,
    received_id        INTEGER REFERENCES received(id),  -- NULL for messages we start (payout)
    kind               TEXT    NOT NULL,       -- acknowledgment | message_error | apprec |
                                               -- payout_decision
    ebxml_message_id   TEXT,
    ref_to_message_id  TEXT,
    recipient          TEXT    NOT NULL,       -- a mail address, or 'HER:<id>' (resolved by CPA)
    filename           TEXT    NOT NULL UNIQUE,
    body               BLOB    NOT NULL,
    created_at         TEXT    NOT NULL,
    state              TEXT    NOT NULL
                       CHECK (state IN ('pending', 'delivered', 'dead', 'discarded')),
    delivered_at       TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0,  -- failed delivery attempts since queued
    next_attempt_at    TEXT,                   -- UTC; NULL = as soon as possible
    last_error         TEXT,
    sends              INTEGER NOT NULL DEFAULT 0,  -- successful deliveries, resends included
    ack_state          TEXT CHECK (ack_state IN ('awaiting', 'acknowledged', 'error', 'expired')),
    ack_received_id    INTEGER REFERENCES received(id),  -- the signal that settled it
    ack_at             TEXT,
    -- expires_at, UTC: after this, no resend (TimeToLive)
    expires_at         TEXT,
    claimed_by         TEXT,
    claimed_at         TEXT,
    body_sha256        TEXT,
    body_size          INTEGER,
    archive_file       TEXT,
    archive_member     TEXT
);
-- body_sha256 .. archive_member: set by `gateway retention archive`, the body is then empty;
-- what it was (hash, size) and where its bytes now are (a member of an archive file).
CREATE INDEX IF NOT EXISTS replies_pending ON replies(state) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS replies_received ON replies(received_id);
CREATE INDEX IF NOT EXISTS replies_awaiting_ack ON replies(ack_state) WHERE ack_state = 'awaiting';
CREATE INDEX IF NOT EXISTS replies_ebxml_id ON replies(ebxml_message_id);

-- Tariff and code data: every imported file is kept; the newest of each kind is in force.
CREATE TABLE IF NOT EXISTS tariff_imports (
    id           INTEGER PRIMARY KEY,
    kind         TEXT    NOT NULL CHECK (kind IN ('takster', 'nlk_codes', 'nlk_rates')),
    source       TEXT    NOT NULL,             -- the file name it was imported from
    sha256       TEXT    NOT NULL,
    rows         INTEGER NOT NULL,
    imported_at  TEXT    NOT NULL,
    content      BLOB    NOT NULL
);

-- The practice register (praksisinformasjon): every imported file is kept with its rows; the
-- newest import is the register in force (gateway.practices; `gateway practices import`).
CREATE TABLE IF NOT EXISTS practice_imports (
    id           INTEGER PRIMARY KEY,
    source       TEXT    NOT NULL,             -- the file name it was imported from
    format       TEXT    NOT NULL CHECK (format IN ('csv', 'json')),
    sha256       TEXT    NOT NULL,
    rows         INTEGER NOT NULL,
    imported_at  TEXT    NOT NULL,             -- UTC, ISO 8601
    content      BLOB    NOT NULL
);

-- One row per practice and period of validity, per import. Dates are ISO days, *_to inclusive
-- (NULL = open). Join a bill on her_id = bills.sender_her and its treatment day (the first ten
-- characters of bills.dato_tid) between valid_from and COALESCE(valid_to, '9999-12-31').
CREATE TABLE IF NOT EXISTS practice_periods (
    id                        INTEGER PRIMARY KEY,
    import_id                 INTEGER NOT NULL REFERENCES practice_imports(id),
    her_id                    TEXT    NOT NULL,
    enh_id                    TEXT,             -- organisation number
    name                      TEXT    NOT NULL,
    practice_type             TEXT    NOT NULL, -- praksistype: gateway.claims.practitioner
    practitioner_type         TEXT,             -- the rule family it gives (bills.practitioner_type)
    specialties               TEXT    NOT NULL, -- '|'-separated fagområder, '' = none
    fagomrade                 TEXT,             -- the main (first) specialty
    municipality              TEXT,             -- kommunenummer of the practice
    valid_from                TEXT    NOT NULL,
    valid_to                  TEXT,
    direct_settlement_from    TEXT,             -- avtale om direkte oppgjør
    direct_settlement_to      TEXT,
    operating_agreement_from  TEXT,             -- driftsavtale
    operating_agreement_to    TEXT,
    account                   TEXT,             -- payout account
    kid                       TEXT,
    owner_her_id              TEXT,             -- the health authority owning a public laboratory
    mail_address              TEXT,
    cpa_id                    TEXT
);
CREATE INDEX IF NOT EXISTS practice_periods_her ON practice_periods(import_id, her_id, valid_from);

-- The rows of the register in force.
CREATE VIEW IF NOT EXISTS practices_in_force AS
SELECT p.* FROM practice_periods p
WHERE p.import_id = (SELECT MAX(id) FROM practice_imports);

-- =============================================================================================
-- case work: overrides by case workers and rebehandling (gateway claims override, rules replay)
-- =============================================================================================

-- An override is its own audited record, never an edit of the decision in bills/findings. Case
-- workers write kind 'override' (`gateway claims override`); `gateway rules replay --apply`
-- writes kind 'rebehandling' with by = 'rebehandling:<name>'. The latest record (highest id) of a
-- bill decides its effective status; without one, the engine's decision stands.
CREATE TABLE IF NOT EXISTS overrides (
    id               INTEGER PRIMARY KEY,
    bill_id          INTEGER NOT NULL REFERENCES bills(id),
    decision         TEXT    NOT NULL CHECK (decision IN ('godkjent', 'avvist')),
    amount_ore       INTEGER NOT NULL CHECK (amount_ore >= 0),  -- approved amount; 0 if avvist
    reason           TEXT    NOT NULL CHECK (length(trim(reason)) > 0),
    "by"             TEXT    NOT NULL CHECK (length(trim("by")) > 0),
    "at"             TEXT    NOT NULL,       -- UTC, ISO 8601
    previous_status  TEXT    NOT NULL CHECK (previous_status IN ('godkjent', 'avvist')),
    previous_ore     INTEGER NOT NULL,       -- the effective approved amount before this record
    kind             TEXT    NOT NULL DEFAULT 'override'
                             CHECK (kind IN ('override', 'rebehandling')),
    ruleset_version  TEXT,                   -- rebehandling: the rule set that decided
    details          TEXT,                   -- rebehandling: JSON of the findings added/removed
    CHECK (decision = 'godkjent' OR amount_ore = 0)
);
CREATE INDEX IF NOT EXISTS overrides_bill ON overrides(bill_id, id);

-- Paper claims (papirregninger) are kept only as aggregates, no personal data: the refund paid
-- per submission, per practice and period (gateway.paper). The payout pays each once
-- (payout_paper_lines, gateway.payout.ledger); the statistics count the refund where a table
-- has practice dimensions only (gateway.stats.paper).
CREATE TABLE IF NOT EXISTS paper_claims (
    id             INTEGER PRIMARY KEY,
    practice_her   TEXT    NOT NULL,           -- the practice (sender) the refund is paid for
    submission     TEXT    NOT NULL,           -- the submission's own reference (innsending)
    period_from    TEXT    NOT NULL,           -- treatment days the submission covers (ISO)
    period_to      TEXT    NOT NULL,
    practice_type  TEXT,                       -- the practitioner type, for payees and statistics
    bills          INTEGER NOT NULL CHECK (bills >= 0),      -- how many bills, a count only
    refund_ore     INTEGER NOT NULL CHECK (refund_ore >= 0), -- refund paid for the submission
    registered_at  TEXT    NOT NULL,           -- UTC
    registered_by  TEXT    NOT NULL CHECK (length(trim(registered_by)) > 0),
    UNIQUE (practice_her, submission),
    CHECK (period_from <= period_to)
);

-- What the payout reads: the effective status and approved amount of every bill.
CREATE VIEW IF NOT EXISTS bill_status_effective AS
SELECT b.id                                   AS bill_id,
       COALESCE(o.decision, b.status)         AS status,
       COALESCE(o.amount_ore, b.approved_ore) AS approved_ore,
       (o.id IS NOT NULL)                     AS overridden,
       o.id                                   AS override_id,
       o.kind                                 AS override_kind
FROM bills b
LEFT JOIN overrides o
       ON o.id = (SELECT MAX(x.id) FROM overrides x WHERE x.bill_id = b.id);

-- =============================================================================================
-- the web console (gateway web, gateway users): users, sessions, audit log, login attempts
-- =============================================================================================

-- Nothing here holds a password or a session token in the clear. Times are UTC, ISO 8601.
CREATE TABLE IF NOT EXISTS console_users (
    id                   INTEGER PRIMARY KEY,
    username             TEXT    NOT NULL UNIQUE,
    display_name         TEXT    NOT NULL,
    password_hash        TEXT    NOT NULL,      -- argon2id, encoded with its parameters
    roles                TEXT    NOT NULL,      -- comma-separated: saksbehandler,drift,revisor
    disabled             INTEGER NOT NULL DEFAULT 0,
    created_at           TEXT    NOT NULL,
    updated_at           TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash    TEXT    PRIMARY KEY,          -- SHA-256 of the cookie's token
    user_id       INTEGER NOT NULL REFERENCES console_users(id),
    csrf_token    TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    last_seen_at  TEXT    NOT NULL,
    expires_at    TEXT    NOT NULL,             -- absolute end, whatever the activity
    client        TEXT
);
CREATE INDEX IF NOT EXISTS console_sessions_user ON console_sessions(user_id);
-- Every action in the console and by `gateway users`: who, what, to what, when, from where.
CREATE TABLE IF NOT EXISTS audit_log (
    id       INTEGER PRIMARY KEY,
    "at"     TEXT    NOT NULL,
    actor    TEXT    NOT NULL,                  -- console user name, or cli:<login>
    action   TEXT    NOT NULL,                  -- e.g. login, override, requeue
    target   TEXT,                              -- what it was done to (bill 12, reply 7)
    detail   TEXT,                              -- never a national id
    client   TEXT                               -- the remote address, for the console
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log("at");
-- Login throttling; attempts older than a day are removed.
CREATE TABLE IF NOT EXISTS login_attempts (
    id        INTEGER PRIMARY KEY,
    "at"      TEXT    NOT NULL,
    username  TEXT    NOT NULL,
    client    TEXT    NOT NULL,
    ok        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_attempts_user ON login_attempts(username, "at");
CREATE INDEX IF NOT EXISTS login_attempts_client ON login_attempts(client, "at");
