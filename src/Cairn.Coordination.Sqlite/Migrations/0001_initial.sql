-- Coordination state, SQLite. Times are Unix milliseconds; lists are JSON arrays. See docs/coordination.md.
CREATE TABLE IF NOT EXISTS sites (
    name          TEXT PRIMARY KEY,
    platform      TEXT NOT NULL,
    environment   TEXT,
    labels        TEXT NOT NULL,
    registered_at INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS site_tokens (
    id            TEXT PRIMARY KEY,
    site          TEXT NOT NULL REFERENCES sites (name),
    token_hash    TEXT NOT NULL,
    path_prefixes TEXT NOT NULL,
    channels      TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX IF NOT EXISTS site_tokens_site ON site_tokens (site);

-- The fencing sequence shared by claims and leases (SQLite has no sequences).
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('fencing', 0) ON CONFLICT (name) DO NOTHING;

CREATE TABLE IF NOT EXISTS claims (
    build_key     TEXT PRIMARY KEY,
    site          TEXT NOT NULL REFERENCES sites (name),
    fencing_token INTEGER NOT NULL,
    acquired_at   INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    released_at   INTEGER
);

CREATE TABLE IF NOT EXISTS leases (
    id          INTEGER PRIMARY KEY,
    site        TEXT NOT NULL REFERENCES sites (name),
    paths       TEXT NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    released_at INTEGER
);
CREATE INDEX IF NOT EXISTS leases_live ON leases (expires_at) WHERE released_at IS NULL;

CREATE TABLE IF NOT EXISTS commits (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    site          TEXT NOT NULL REFERENCES sites (name),
    token_id      TEXT,
    lease_id      INTEGER NOT NULL,
    build_key     TEXT,
    fencing_token INTEGER,
    paths         TEXT NOT NULL,
    channel       TEXT,
    revision      INTEGER NOT NULL,
    root          TEXT,
    message       TEXT NOT NULL,
    committed_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS commits_site ON commits (site, id);

CREATE TABLE IF NOT EXISTS build_results (
    build_key   TEXT NOT NULL,
    site        TEXT NOT NULL REFERENCES sites (name),
    product     TEXT NOT NULL,
    output_root TEXT,
    passed      INTEGER NOT NULL,
    failed      INTEGER NOT NULL,
    skipped     INTEGER NOT NULL,
    tests       TEXT,
    environment TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    log_link    TEXT,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (build_key, site)
);

CREATE TABLE IF NOT EXISTS channel_policies (
    channel        TEXT PRIMARY KEY,
    required_sites INTEGER NOT NULL CHECK (required_sites >= 1)
);

CREATE TABLE IF NOT EXISTS promotions (
    build_key      TEXT NOT NULL,
    channel        TEXT NOT NULL,
    output_root    TEXT NOT NULL,
    agreeing_sites INTEGER NOT NULL,
    promoted_at    INTEGER NOT NULL,
    PRIMARY KEY (build_key, channel)
);
