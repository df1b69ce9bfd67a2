-- The job queue. A job is queued (waiting for run_at), running (leased by
-- locked_by until locked_until), or dead (failed max_attempts times; kept for
-- an operator). A job that succeeds is deleted.
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  run_at TEXT NOT NULL,
  locked_by TEXT,
  locked_until TEXT,
  last_error TEXT,
  unique_key TEXT,
  request_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX jobs_ready ON jobs (status, run_at);
-- At most one live job per unique key (scheduled work that must not pile up).
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key) WHERE unique_key IS NOT NULL AND status <> 'dead';

-- The transactional outbox: domain events written in the same transaction as
-- the change that caused them. Subscribers receive them through jobs.
CREATE TABLE events (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  subject TEXT,
  payload TEXT NOT NULL,
  request_id TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX events_type ON events (type, created_at);
CREATE INDEX events_subject ON events (subject, created_at);
