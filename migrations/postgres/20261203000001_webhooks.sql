-- Webhooks (Standard Webhooks 1.0) from a durable outbox. An event is written in the transaction of the change it
-- reports, with one delivery per endpoint subscribed to it then; any instance claims due deliveries under a lease
-- (the refresh leases' pattern), so a change that committed is delivered at least once whichever instance dies.
-- Never a token in a payload, like the audit log.
CREATE TABLE webhook_endpoints (
    id                     TEXT   PRIMARY KEY,
    url                    TEXT   NOT NULL,
    description            TEXT,
    -- Space-separated event types; NULL: every type.
    events                 TEXT,
    -- The signing secret (`whsec_…`), sealed by the vault like tokens; during a rotation the previous one signs too
    -- until previous_secret_until.
    secret                 TEXT   NOT NULL,
    previous_secret        TEXT,
    previous_secret_until  BIGINT,
    disabled_at            BIGINT,
    disabled_reason        TEXT,
    -- Health: the last 2xx, and the failed attempts since (from failing_since).
    last_success_at        BIGINT,
    failing_since          BIGINT,
    consecutive_failures   BIGINT NOT NULL DEFAULT 0,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);

CREATE TABLE webhook_events (
    id           TEXT   PRIMARY KEY,
    type         TEXT   NOT NULL,
    user_id      BIGINT,
    account_id   TEXT,
    occurred_at  BIGINT NOT NULL,
    -- The body every delivery of the event sends, byte for byte (what is signed).
    payload      TEXT   NOT NULL
);
CREATE INDEX webhook_events_occurred_at_idx ON webhook_events (occurred_at);

CREATE TABLE webhook_deliveries (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id          TEXT   NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id       TEXT   NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- Deliveries of one key (an account, or a user for user events) to one endpoint go out in id order: a later one
    -- waits while an earlier one is pending.
    ordering_key      TEXT   NOT NULL,
    state             TEXT   NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT NOT NULL,
    lease_owner       TEXT,
    lease_until       BIGINT,
    last_attempt_at   BIGINT,
    last_status       BIGINT,
    last_error        TEXT,
    last_latency_ms   BIGINT,
    delivered_at      BIGINT,
    created_at        BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (endpoint_id, ordering_key, state, id);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);

-- Each attempt, for the admin's delivery log: what was sent (the body is the event's; the signature is never kept)
-- and what came back (headers and the first 4 KB of the body).
CREATE TABLE webhook_attempts (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id       BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt           BIGINT NOT NULL,
    -- The instance that sent it (its lease owner id).
    sent_by           TEXT   NOT NULL,
    sent_at           BIGINT NOT NULL,
    webhook_timestamp BIGINT NOT NULL,
    latency_ms        BIGINT NOT NULL,
    status            BIGINT,
    error             TEXT,
    response_headers  TEXT,
    response_body     TEXT
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, attempt);
