-- The resend cool-down per phone and client address, so that somebody else
-- asking for codes for a phone cannot hold back its owner. Rows older than an
-- hour are deleted as new ones arrive.
DROP TABLE otp_throttle;
CREATE TABLE otp_throttle (
  phone TEXT NOT NULL,
  ip TEXT NOT NULL,
  last_sent_at TEXT NOT NULL,
  PRIMARY KEY (phone, ip)
);
CREATE INDEX otp_throttle_sent ON otp_throttle (last_sent_at);

-- Failed sign-ins of every kind: `account` is the email for passwords and
-- "phone:+E164" for codes.
ALTER TABLE login_failures RENAME COLUMN email TO account;
