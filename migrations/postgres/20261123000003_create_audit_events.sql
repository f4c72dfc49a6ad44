-- Append-only record of what happened to linked accounts and what was done with them. No foreign keys: the
-- history outlives the users and accounts it mentions. details is JSON and never holds a token.
CREATE TABLE audit_events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              BIGINT NOT NULL,
    actor_user_id   BIGINT,
    subject_user_id BIGINT,
    action          TEXT   NOT NULL,
    outcome         TEXT   NOT NULL CHECK (outcome IN ('success', 'failure', 'rejected')),
    provider        TEXT,
    account_id      TEXT,
    resource_server TEXT,
    request_id      TEXT,
    details         TEXT   NOT NULL
);
CREATE INDEX audit_events_subject_user_id_idx ON audit_events (subject_user_id, id);
CREATE INDEX audit_events_account_id_idx ON audit_events (account_id, id);
