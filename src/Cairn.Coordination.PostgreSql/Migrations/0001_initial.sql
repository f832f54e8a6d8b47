-- Coordination state, PostgreSQL. Times are Unix milliseconds; lists are JSON arrays (text, so that the SQL
-- the stores share runs unchanged on SQLite). See docs/coordination.md.
CREATE TABLE IF NOT EXISTS sites (
    name          TEXT PRIMARY KEY,
    platform      TEXT NOT NULL,
    environment   TEXT,
    labels        TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS site_tokens (
    id            TEXT PRIMARY KEY,
    site          TEXT NOT NULL REFERENCES sites (name),
    token_hash    TEXT NOT NULL,
    path_prefixes TEXT NOT NULL,
    channels      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX IF NOT EXISTS site_tokens_site ON site_tokens (site);

-- The fencing sequence shared by claims and leases. nextval is outside transactions: a rolled-back claim
-- leaves a gap, which is harmless; tokens only need to grow.
CREATE SEQUENCE IF NOT EXISTS cairn_fencing;

CREATE TABLE IF NOT EXISTS claims (
    build_key     TEXT PRIMARY KEY,
    site          TEXT NOT NULL REFERENCES sites (name),
    fencing_token BIGINT NOT NULL,
    acquired_at   BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    released_at   BIGINT
);

CREATE TABLE IF NOT EXISTS leases (
    id          BIGINT PRIMARY KEY,
    site        TEXT NOT NULL REFERENCES sites (name),
    paths       TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    released_at BIGINT
);
CREATE INDEX IF NOT EXISTS leases_live ON leases (expires_at) WHERE released_at IS NULL;

CREATE TABLE IF NOT EXISTS commits (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site          TEXT NOT NULL REFERENCES sites (name),
    token_id      TEXT,
    lease_id      BIGINT NOT NULL,
    build_key     TEXT,
    fencing_token BIGINT,
    paths         TEXT NOT NULL,
    channel       TEXT,
    revision      BIGINT NOT NULL,
    root          TEXT,
    message       TEXT NOT NULL,
    committed_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS commits_site ON commits (site, id);

CREATE TABLE IF NOT EXISTS build_results (
    build_key   TEXT NOT NULL,
    site        TEXT NOT NULL REFERENCES sites (name),
    product     TEXT NOT NULL,
    output_root TEXT,
    passed      BIGINT NOT NULL,
    failed      BIGINT NOT NULL,
    skipped     BIGINT NOT NULL,
    tests       TEXT,
    environment TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    log_link    TEXT,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (build_key, site)
);

CREATE TABLE IF NOT EXISTS channel_policies (
    channel        TEXT PRIMARY KEY,
    required_sites BIGINT NOT NULL CHECK (required_sites >= 1)
);

CREATE TABLE IF NOT EXISTS promotions (
    build_key      TEXT NOT NULL,
    channel        TEXT NOT NULL,
    output_root    TEXT NOT NULL,
    agreeing_sites BIGINT NOT NULL,
    promoted_at    BIGINT NOT NULL,
    PRIMARY KEY (build_key, channel)
);
