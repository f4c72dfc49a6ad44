-- An event's deliveries are made by the event's own INSERT (this trigger), not by a second statement: the event is
-- written inside the transaction of the change it reports, and on SQLite that transaction holds the one write lock,
-- so each round trip from the app to the database inside it slows every other writer (BENCHMARKS.md "Outbox
-- overhead": by elimination, each costs about a tenth of a link callback's time with 32 in flight).
--
-- One delivery per enabled endpoint subscribed to the event's type (no list: every type; `_` escaped for LIKE),
-- written *waiting* (`next_attempt_at` at the far end of time, 9223372036854775807 = i64::MAX, the app's
-- `repo::WAITING`) when a delivery of the same endpoint and ordering key is still pending, else due at once.
-- `webhook.test` events go to one endpoint only; the app writes that delivery itself. An event without an ordering
-- key was written by a binary from before this migration (during a rolling upgrade, or an old instance still
-- running): that binary writes its own deliveries, as it always did, so the trigger leaves it alone.
ALTER TABLE webhook_events ADD COLUMN ordering_key TEXT NOT NULL DEFAULT '';
UPDATE webhook_events SET ordering_key = CASE
    WHEN account_id IS NOT NULL THEN 'account:' || account_id
    WHEN user_id IS NOT NULL THEN 'user:' || user_id
    ELSE 'event:' || id END;

CREATE TRIGGER webhook_events_fan_out AFTER INSERT ON webhook_events
    WHEN NEW.type <> 'webhook.test' AND NEW.ordering_key <> ''
BEGIN
    INSERT INTO webhook_deliveries (event_id, endpoint_id, ordering_key, state, next_attempt_at, created_at)
    SELECT NEW.id, e.id, NEW.ordering_key, 'pending',
           CASE WHEN EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = e.id
                             AND p.ordering_key = NEW.ordering_key AND p.state = 'pending')
                THEN 9223372036854775807 ELSE NEW.occurred_at END,
           NEW.occurred_at
    FROM webhook_endpoints e
    WHERE e.disabled_at IS NULL
      AND (e.events IS NULL OR (' ' || e.events || ' ') LIKE '% ' || replace(NEW.type, '_', '\_') || ' %' ESCAPE '\');
END;
