-- Failed password sign-ins, for throttling guesses per account and per
-- address. Rows older than the window are deleted as new ones arrive.
CREATE TABLE login_failures (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL,
  ip TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX login_failures_email ON login_failures (email, created_at);
CREATE INDEX login_failures_ip ON login_failures (ip, created_at);
