-- The audit log is append-only, and the database says so too: changing or removing events is refused whoever asks
-- through SQL (the application never does: it only inserts). SQLite has no TRUNCATE; DELETE without WHERE is refused
-- like any other.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
END;
