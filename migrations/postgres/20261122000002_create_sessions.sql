-- tower-sessions records. user_id is copied out of the record so that all sessions of one user can be ended at
-- once (password change, account disabled).
CREATE TABLE sessions (
    id         TEXT   PRIMARY KEY,
    user_id    BIGINT REFERENCES users (id) ON DELETE CASCADE,
    data       TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
