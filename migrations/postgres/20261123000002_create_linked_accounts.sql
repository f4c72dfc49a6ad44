-- Accounts at external providers linked to local users. One external identity belongs to one local user
-- (linked_accounts_provider_subject_key); a user may link several accounts at one provider.
CREATE TABLE linked_accounts (
    id                TEXT   PRIMARY KEY,
    user_id           BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider          TEXT   NOT NULL,
    subject           TEXT   NOT NULL,
    username          TEXT,
    display_name      TEXT,
    email             TEXT,
    status            TEXT   NOT NULL
        CHECK (status IN ('active', 'needs_reconnect', 'needs_consent', 'revoked', 'error')),
    status_reason     TEXT,
    last_refreshed_at BIGINT,
    last_used_at      BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    CONSTRAINT linked_accounts_provider_subject_key UNIQUE (provider, subject)
);
CREATE INDEX linked_accounts_user_id_idx ON linked_accounts (user_id);

-- One token set per linked account and resource server (Globus returns one per resource server in other_tokens).
-- access_token and refresh_token hold vault-sealed values (tokens::vault): never plaintext. Every write bumps
-- version, which key rotation and (later) refresh use as a compare-and-swap guard.
CREATE TABLE token_sets (
    id              TEXT   PRIMARY KEY,
    account_id      TEXT   NOT NULL REFERENCES linked_accounts (id) ON DELETE CASCADE,
    resource_server TEXT   NOT NULL,
    scopes          TEXT   NOT NULL,
    token_type      TEXT   NOT NULL,
    access_token    TEXT   NOT NULL,
    refresh_token   TEXT,
    expires_at      BIGINT,
    issued_at       BIGINT NOT NULL,
    version         BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    updated_at      BIGINT NOT NULL,
    CONSTRAINT token_sets_account_resource_server_key UNIQUE (account_id, resource_server)
);
