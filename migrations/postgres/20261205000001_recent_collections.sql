-- The collections a user last started transfers with, per linked account, for the file manager's picker. The name,
-- owner and type are kept as they were then, so the picker shows them without a call per collection.
CREATE TABLE recent_collections (
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id   TEXT   NOT NULL REFERENCES linked_accounts (id) ON DELETE CASCADE,
    endpoint_id  TEXT   NOT NULL,
    display_name TEXT   NOT NULL,
    owner        TEXT,
    entity_type  TEXT,
    used_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, account_id, endpoint_id)
);
CREATE INDEX recent_collections_used_idx ON recent_collections (user_id, account_id, used_at);
