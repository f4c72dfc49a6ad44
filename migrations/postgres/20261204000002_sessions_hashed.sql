-- Sessions are stored under the SHA-256 of their id from now on (`auth::session_store`). The ids stored so far are
-- the cookies' bearer values themselves; they cannot be hashed in SQL on SQLite, and keeping them would leave them
-- in the database and its backups: they are ended, and everyone signs in once more.
DELETE FROM sessions;
