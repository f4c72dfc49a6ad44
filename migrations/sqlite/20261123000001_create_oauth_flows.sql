-- Pending authorizations (DESIGN §3 "Link"): one row per started link, reconnect or grant. The state is stored
-- hashed (SHA-256, hex) so a database reader cannot complete someone's flow; consumed_at makes it single use while
-- keeping the row until it expires, so a replay is told apart from an unknown state.
CREATE TABLE oauth_flows (
    state_hash       TEXT   PRIMARY KEY,
    session_hash     TEXT   NOT NULL,
    user_id          BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider         TEXT   NOT NULL,
    intent           TEXT   NOT NULL CHECK (intent IN ('link', 'reconnect', 'grant')),
    account_id       TEXT,
    pkce_verifier    TEXT   NOT NULL,
    nonce            TEXT,
    requested_scopes TEXT   NOT NULL,
    return_to        TEXT   NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    consumed_at      BIGINT
);
CREATE INDEX oauth_flows_expires_at_idx ON oauth_flows (expires_at);
