-- Reports by users about a user, a request, an offer or a message. The owner
-- of the target is kept, since a decision (warn, suspend) acts on them. One
-- open report per reporter and target.
CREATE TABLE reports (
  id TEXT PRIMARY KEY,
  reporter_id TEXT NOT NULL REFERENCES users (id),
  target_type TEXT NOT NULL,
  target_id TEXT NOT NULL,
  target_owner_id TEXT NOT NULL REFERENCES users (id),
  reason TEXT NOT NULL,
  details TEXT,
  status TEXT NOT NULL CHECK (status IN ('open', 'dismissed', 'actioned')),
  decision TEXT CHECK (decision IN ('dismiss', 'warn', 'suspend')),
  decision_note TEXT,
  decided_by TEXT REFERENCES users (id),
  decided_at TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX reports_status ON reports (status, id);
CREATE INDEX reports_target ON reports (target_type, target_id);
CREATE UNIQUE INDEX reports_one_open ON reports (reporter_id, target_type, target_id) WHERE status = 'open';
