-- The key of the form a transfer was started from (one per rendered review, or the service API's idempotency_key):
-- the same form posted twice (a double click, a resent request) finds its submission instead of starting a second.
ALTER TABLE transfer_submissions ADD COLUMN form_key TEXT;
CREATE UNIQUE INDEX transfer_submissions_form_key_idx ON transfer_submissions (user_id, form_key);
