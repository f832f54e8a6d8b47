-- The operator's actions through the dashboard (revoke a token, promote, re-run): append-only audit beside commits.
CREATE TABLE IF NOT EXISTS operator_actions (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    actor     TEXT NOT NULL,
    acted_at  BIGINT NOT NULL
);
