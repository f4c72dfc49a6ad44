-- Acting for users (delegation). Per token set: the refresh failures since the last success and the cooldown they
-- earned (calls fail fast until cooldown_until; the background refresher skips the row). Per account: the scopes a
-- provider said are missing (needs_consent), which "Grant access" requests. Transfer submissions are kept so a
-- retry after consent reuses the submission id Globus de-duplicates on.
ALTER TABLE token_sets ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE token_sets ADD COLUMN cooldown_until BIGINT;
ALTER TABLE token_sets ADD COLUMN last_error TEXT;
CREATE INDEX token_sets_expires_at_idx ON token_sets (expires_at);
ALTER TABLE linked_accounts ADD COLUMN consent_scopes TEXT;

CREATE TABLE transfer_submissions (
    id            TEXT   PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id    TEXT   NOT NULL REFERENCES linked_accounts (id) ON DELETE CASCADE,
    submission_id TEXT   NOT NULL,
    document      TEXT   NOT NULL,
    status        TEXT   NOT NULL CHECK (status IN ('pending', 'submitted')),
    task_id       TEXT,
    last_error    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX transfer_submissions_user_id_idx ON transfer_submissions (user_id, created_at);
