-- Failed sign-in counters, one row per throttle key (account, client, account+client). Times in Unix ms.
CREATE TABLE sign_in_throttles (
    key             TEXT   PRIMARY KEY,
    failures        BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    blocked_until   BIGINT NOT NULL
);
CREATE INDEX sign_in_throttles_last_failure_at_idx ON sign_in_throttles (last_failure_at);
