-- A user's request to sell: pending until an admin approves (the user gets
-- the seller role) or rejects it with a reason (the user may apply again).
CREATE TABLE seller_profiles (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL UNIQUE REFERENCES users (id),
  business_name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  city TEXT NOT NULL,
  documents TEXT NOT NULL DEFAULT '[]',
  status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
  rejection_reason TEXT,
  decided_by TEXT REFERENCES users (id),
  decided_at TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX seller_profiles_status ON seller_profiles (status, id);

-- Warnings an admin gave a user (the user sees them on their account).
CREATE TABLE user_warnings (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id),
  admin_id TEXT NOT NULL REFERENCES users (id),
  reason TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX user_warnings_user ON user_warnings (user_id, id);
