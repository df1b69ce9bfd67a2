-- The Idempotency-Key layer (ARCHITECTURE.md "HTTP API conventions"): one row
-- per caller and key. `in_flight` while the first request runs (another with
-- the same key gets 409 until locked_until); `done` keeps the response for
-- replays until the key is 24 hours old. A request that failed leaves no row.
CREATE TABLE idempotency_keys (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('in_flight', 'done')),
  response_status INTEGER,
  response_body TEXT,
  locked_until TEXT,
  created_at TEXT NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
