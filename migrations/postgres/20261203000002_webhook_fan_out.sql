-- An event's deliveries are made by the event's own INSERT (this trigger), not by further statements: the event is
-- written inside the transaction of the change it reports, and every round trip from the app inside that
-- transaction adds to the change's time (BENCHMARKS.md "Outbox overhead").
--
-- First the ordering key's advisory transaction lock (the app's `repo::lock_order` takes the same one: the recorder
-- ending a key's head holds it, so a delivery added behind that head is never decided "waiting" on a view that
-- misses the end, nor left waiting with nobody to promote it). Then one delivery per enabled endpoint subscribed to
-- the event's type (no list: every type; `_` escaped for LIKE), written *waiting* (`next_attempt_at` =
-- 9223372036854775807 = i64::MAX, the app's `repo::WAITING`) when a delivery of the same endpoint and key is still
-- pending, else due at once. `webhook.test` events go to one endpoint only; the app writes that delivery itself. An
-- event without an ordering key was written by a binary from before this migration (a rolling upgrade, an old
-- instance still running): that binary writes its own deliveries, as it always did, so the trigger leaves it alone.
ALTER TABLE webhook_events ADD COLUMN ordering_key TEXT NOT NULL DEFAULT '';
UPDATE webhook_events SET ordering_key = CASE
    WHEN account_id IS NOT NULL THEN 'account:' || account_id
    WHEN user_id IS NOT NULL THEN 'user:' || user_id
    ELSE 'event:' || id END;

CREATE FUNCTION webhook_events_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('webhook-order:' || NEW.ordering_key, 0));
    INSERT INTO webhook_deliveries (event_id, endpoint_id, ordering_key, state, next_attempt_at, created_at)
    SELECT NEW.id, e.id, NEW.ordering_key, 'pending',
           CASE WHEN EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = e.id
                             AND p.ordering_key = NEW.ordering_key AND p.state = 'pending')
                THEN 9223372036854775807 ELSE NEW.occurred_at END,
           NEW.occurred_at
    FROM webhook_endpoints e
    WHERE e.disabled_at IS NULL
      AND (e.events IS NULL OR (' ' || e.events || ' ') LIKE '% ' || replace(NEW.type, '_', '\_') || ' %' ESCAPE '\');
    RETURN NULL;
END
$$;

CREATE TRIGGER webhook_events_fan_out AFTER INSERT ON webhook_events
    FOR EACH ROW WHEN (NEW.type <> 'webhook.test' AND NEW.ordering_key <> '') EXECUTE FUNCTION webhook_events_fan_out();
