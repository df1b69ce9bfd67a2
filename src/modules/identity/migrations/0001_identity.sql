-- Accounts. email is stored lower-cased; phone in E.164. A user without a
-- password_hash signs in another way (OTP, OpenID Connect).
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  display_name TEXT NOT NULL,
  email TEXT UNIQUE,
  phone TEXT UNIQUE,
  locale TEXT NOT NULL DEFAULT 'en',
  avatar_url TEXT,
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  password_hash TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

-- Roles are data: buyer (everyone), seller (after approval), admin, and
-- whatever tenant roles later modules add.
CREATE TABLE user_roles (
  user_id TEXT NOT NULL REFERENCES users (id),
  role TEXT NOT NULL,
  granted_at TEXT NOT NULL,
  PRIMARY KEY (user_id, role)
);

-- A session is one sign-in on one device: the family of its refresh tokens.
-- Revoking it (logout, reuse of a rotated refresh token, suspension) ends
-- every token of the family, access tokens included, at the next request.
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id),
  created_at TEXT NOT NULL,
  last_used_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  revoked_at TEXT,
  revoked_reason TEXT,
  user_agent TEXT,
  ip TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Refresh tokens, stored as SHA-256 of the opaque token. used_at is set when
-- the token is rotated; presenting it again revokes its session.
CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions (id),
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  used_at TEXT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Signing keys made by souq itself when the operator configures none, so that
-- every node of one database signs and verifies alike.
CREATE TABLE identity_keys (
  id TEXT PRIMARY KEY,
  secret TEXT NOT NULL,
  created_at TEXT NOT NULL
);
