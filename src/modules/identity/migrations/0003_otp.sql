-- One-time codes for phone sign-in: stored as HMAC, 10 minutes, 3 attempts.
-- A newer code for the same phone retires the older ones.
CREATE TABLE otp_codes (
  id TEXT PRIMARY KEY,
  phone TEXT NOT NULL,
  code_hash TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  expires_at TEXT NOT NULL,
  consumed_at TEXT,
  ip TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX otp_codes_phone ON otp_codes (phone, id);
CREATE INDEX otp_codes_ip ON otp_codes (ip, created_at);

-- The resend cool-down per phone, as a row a guarded UPDATE claims, so two
-- racing requests cannot both send.
CREATE TABLE otp_throttle (
  phone TEXT PRIMARY KEY,
  last_sent_at TEXT NOT NULL
);
