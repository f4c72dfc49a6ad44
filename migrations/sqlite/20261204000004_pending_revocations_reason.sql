-- Why a token waits for revocation: its account was disconnected, or a reconnect (relink, grant more) replaced it
-- while the account stays linked. A replaced token is revoked alone (GitHub: its token, not the grant the new one
-- lives on), and the page words it differently.
ALTER TABLE pending_revocations ADD COLUMN reason TEXT NOT NULL DEFAULT 'disconnected';
