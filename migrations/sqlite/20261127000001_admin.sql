-- The admin area: accounts listed across users, sorted by last use, expiry or creation, filtered by provider,
-- status, user or identity; the audit log filtered by actor, action, provider and time.

-- An account's soonest token expiry, kept by the database itself whenever a token set is written, so the admin list
-- can sort on an index instead of aggregating token sets for every account.
ALTER TABLE linked_accounts ADD COLUMN token_expires_at BIGINT;

UPDATE linked_accounts SET token_expires_at =
    (SELECT MIN(t.expires_at) FROM token_sets t WHERE t.account_id = linked_accounts.id);

CREATE TRIGGER token_sets_expiry_on_insert AFTER INSERT ON token_sets
BEGIN
    UPDATE linked_accounts SET token_expires_at =
        (SELECT MIN(t.expires_at) FROM token_sets t WHERE t.account_id = NEW.account_id)
    WHERE id = NEW.account_id;
END;

CREATE TRIGGER token_sets_expiry_on_update AFTER UPDATE OF expires_at ON token_sets
BEGIN
    UPDATE linked_accounts SET token_expires_at =
        (SELECT MIN(t.expires_at) FROM token_sets t WHERE t.account_id = NEW.account_id)
    WHERE id = NEW.account_id;
END;

CREATE TRIGGER token_sets_expiry_on_delete AFTER DELETE ON token_sets
BEGIN
    UPDATE linked_accounts SET token_expires_at =
        (SELECT MIN(t.expires_at) FROM token_sets t WHERE t.account_id = OLD.account_id)
    WHERE id = OLD.account_id;
END;

-- The sort keys, exactly as `admin::accounts` writes them (NULL sorts as "never": last for expiry and last use).
CREATE INDEX linked_accounts_created_idx ON linked_accounts (created_at, id);
CREATE INDEX linked_accounts_last_used_idx ON linked_accounts (COALESCE(last_used_at, 0), id);
CREATE INDEX linked_accounts_expiry_idx ON linked_accounts (COALESCE(token_expires_at, 253402300799999), id);
CREATE INDEX linked_accounts_status_created_idx ON linked_accounts (status, created_at, id);
CREATE INDEX linked_accounts_provider_created_idx ON linked_accounts (provider, created_at, id);
-- The identity filter matches the subject, the username or the email at the provider.
CREATE INDEX linked_accounts_subject_idx ON linked_accounts (subject);
CREATE INDEX linked_accounts_username_idx ON linked_accounts (username);
CREATE INDEX linked_accounts_email_idx ON linked_accounts (email);

-- The audit log is listed newest first by (at, id); each filter's index leads with its column, then that order, so
-- a filter and a time range are one range scan in list order.
CREATE INDEX audit_events_at_idx ON audit_events (at, id);
CREATE INDEX audit_events_actor_at_idx ON audit_events (actor_user_id, at, id);
CREATE INDEX audit_events_subject_at_idx ON audit_events (subject_user_id, at, id);
CREATE INDEX audit_events_action_at_idx ON audit_events (action, at, id);
CREATE INDEX audit_events_provider_at_idx ON audit_events (provider, at, id);
