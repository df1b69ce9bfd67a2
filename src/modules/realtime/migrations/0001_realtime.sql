-- The secret of each realtime app (Pusher protocol): made once when none is
-- configured, so that `souq serve` works with no flags and every node of a
-- cluster signs alike.
CREATE TABLE realtime_keys (
  app_id TEXT PRIMARY KEY,
  secret TEXT NOT NULL,
  created_at TEXT NOT NULL
);
