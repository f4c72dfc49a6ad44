-- Platform users (issue 17): people of a platform that uses onbehalf, named by the platform's own user id
-- (`external_id`), created by the service API on first use. They have no password (they never use the sign-in page:
-- they arrive through connect sessions) and their email is optional. SQLite cannot drop a NOT NULL constraint, so
-- `users` is rebuilt by the procedure of https://www.sqlite.org/lang_altertable.html#otheralter; `Db::migrate` runs
-- migrations with foreign keys off, so dropping the old table cascades to nothing, and checks every reference after.
CREATE TABLE users_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL only for a platform user whose platform gave none.
    email         TEXT,
    display_name  TEXT    NOT NULL,
    -- NULL: no password, no sign-in with one (platform users).
    password_hash TEXT,
    role          TEXT    NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    disabled_at   BIGINT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    -- The platform's own id of this user (1 to 255 bytes); NULL for local accounts.
    external_id   TEXT,
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_external_id_key UNIQUE (external_id),
    CONSTRAINT users_named CHECK (email IS NOT NULL OR external_id IS NOT NULL),
    CONSTRAINT users_external_id_len CHECK (external_id IS NULL OR length(CAST(external_id AS BLOB)) BETWEEN 1 AND 255)
);
INSERT INTO users_new (id, email, display_name, password_hash, role, disabled_at, created_at, updated_at)
SELECT id, email, display_name, password_hash, role, disabled_at, created_at, updated_at FROM users;
-- The id sequence goes along: the id of a deleted user is never given to another (the audit log names users by id).
INSERT INTO sqlite_sequence (name, seq)
SELECT 'users_new', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'users_new');
UPDATE sqlite_sequence
SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'users'), 0))
WHERE name = 'users_new';
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

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
