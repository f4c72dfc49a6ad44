-- A session's pending flows are capped (`accounts::repo::insert_flow` forgets the oldest past the cap): the cap's
-- query reads them by session, newest first.
CREATE INDEX oauth_flows_session_idx ON oauth_flows (session_hash, created_at);
