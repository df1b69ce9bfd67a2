-- A feed of changes that end or alter sessions (logout, password change,
-- suspension, new roles). Every node that caches sessions in memory reads it
-- to forget what another node or process changed. Rows are kept one hour.
CREATE TABLE auth_changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id TEXT NOT NULL,
  session_id TEXT,
  origin TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX auth_changes_created ON auth_changes (created_at);
