-- A token queued by an instance that could not open it (sealed under a vault key it was not given) keeps the
-- associated data it was sealed for (`token_sets/<id>/<column>`): an instance with the key opens it as it is and
-- re-seals it under this table's own (`keys rotate`, or the revocation itself). NULL: sealed for this table's row.
ALTER TABLE pending_revocations ADD COLUMN sealed_for TEXT;
