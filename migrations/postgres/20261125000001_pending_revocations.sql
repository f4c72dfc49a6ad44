-- Tokens of disconnected accounts that are still to be revoked at their provider. Disconnecting moves every token
-- here in the transaction that deletes the account (so nothing can use them any more), then revokes them; a row
-- stays only while its revocation keeps failing, so the page can show it and the user can retry. `token` is
-- vault-sealed with this table's own associated data, never plaintext.
CREATE TABLE pending_revocations (
    id              TEXT   PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider        TEXT   NOT NULL,
    -- The account's id and label as they were (the account row is gone): for the audit trail and the page.
    account_id      TEXT   NOT NULL,
    account_label   TEXT   NOT NULL,
    token           TEXT   NOT NULL,
    token_type_hint TEXT   NOT NULL CHECK (token_type_hint IN ('access_token', 'refresh_token')),
    expires_at      BIGINT,
    attempts        BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX pending_revocations_user_id_idx ON pending_revocations (user_id);
