-- Found by the admin scale bench (1,000,000 accounts, 10,000,000 events); each index names what it fixed there.

-- A filter on provider or status sorted by last use or expiry was a sort of the whole filtered set (185 ms on SQLite
-- for one provider by expiry). Each filter now has an index per sort, so a filtered page is one range scan in list
-- order whatever the planner guesses.
CREATE INDEX linked_accounts_provider_last_used_idx ON linked_accounts (provider, COALESCE(last_used_at, 0), id);
CREATE INDEX linked_accounts_provider_expiry_idx ON linked_accounts (provider, COALESCE(token_expires_at, 253402300799999), id);
CREATE INDEX linked_accounts_status_last_used_idx ON linked_accounts (status, COALESCE(last_used_at, 0), id);
CREATE INDEX linked_accounts_status_expiry_idx ON linked_accounts (status, COALESCE(token_expires_at, 253402300799999), id);

-- The dashboard. Its count of links by provider and status read every row (1.1 s): it now reads this small covering
-- index. Its links needing attention (`status <> 'active'`, most recently changed first) sorted every such link: this
-- partial index holds only them, in that order. Its day of refreshes and calls by action and outcome looked up each
-- of ~110,000 events for its outcome: the action index now carries the outcome (after `id`, so the audit log's
-- action filter still reads it in list order), and the count reads the index alone.
CREATE INDEX linked_accounts_provider_status_idx ON linked_accounts (provider, status);
CREATE INDEX linked_accounts_attention_idx ON linked_accounts (updated_at, id) WHERE status <> 'active';
DROP INDEX audit_events_action_at_idx;
CREATE INDEX audit_events_action_at_idx ON audit_events (action, at, id, outcome);

-- Statistics for the new indexes now: without them SQLite's planner guessed each one selective and chose one that
-- does not give the list's order (a 270 ms sort for one status by creation), until the next ANALYZE.
ANALYZE linked_accounts;
ANALYZE audit_events;
