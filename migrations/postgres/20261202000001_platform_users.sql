-- Platform users (issue 17): people of a platform that uses onbehalf, named by the platform's own user id
-- (`external_id`), created by the service API on first use. They have no password (they never use the sign-in page:
-- they arrive through connect sessions) and their email is optional.
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;
ALTER TABLE users ADD COLUMN external_id TEXT;
ALTER TABLE users ADD CONSTRAINT users_external_id_key UNIQUE (external_id);
ALTER TABLE users ADD CONSTRAINT users_named CHECK (email IS NOT NULL OR external_id IS NOT NULL);
ALTER TABLE users ADD CONSTRAINT users_external_id_len
    CHECK (external_id IS NULL OR octet_length(external_id) BETWEEN 1 AND 255);

-- What a key may do with connect sessions: the URL prefixes its `return_to` must start with (newline-separated;
-- NULL: no connect sessions), and the name the browser pages give the platform ("Back to <platform_name>").
ALTER TABLE api_keys ADD COLUMN return_urls TEXT;
ALTER TABLE api_keys ADD COLUMN platform_name TEXT;

-- Connect sessions: a single-use URL a platform's backend asks for, for one of its users. The token is stored as its
-- SHA-256 (256 random bits: a fast hash is enough); `used_at` makes it single use while the row stays until it
-- expires, so a reused link is told apart from an unknown one.
CREATE TABLE connect_sessions (
    token_hash  TEXT   PRIMARY KEY,
    api_key_id  BIGINT NOT NULL REFERENCES api_keys (id),
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mode        TEXT   NOT NULL CHECK (mode IN ('connect', 'manage')),
    provider    TEXT,
    account_id  TEXT,
    return_to   TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX connect_sessions_expires_at_idx ON connect_sessions (expires_at);
CREATE INDEX connect_sessions_user_id_idx ON connect_sessions (user_id);
