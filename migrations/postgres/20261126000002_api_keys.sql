-- Keys of the service API (/api/v1), for platform backends. Only a SHA-256 of each key is stored: keys are 256-bit
-- random values, so a fast hash is as strong as a slow one and costs nothing per request. A revoked key stays, with
-- its name, because audit events name the key that acted; names are never reused.
CREATE TABLE api_keys (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT   NOT NULL UNIQUE,
    key_hash     TEXT   NOT NULL UNIQUE,
    -- Space-separated provider ids the key may act with; NULL: every provider.
    providers    TEXT,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
