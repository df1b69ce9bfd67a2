-- Every process version any node has loaded, so that a transaction keeps
-- running on the version it started with after the files change.
CREATE TABLE process_versions (
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  definition TEXT NOT NULL,
  checksum TEXT NOT NULL,
  origin TEXT NOT NULL,
  stored_at TEXT NOT NULL,
  PRIMARY KEY (name, version)
);

-- Agreements between a buyer and a seller moving through a process. `version`
-- is bumped by every transition, which is guarded by it. `entered` maps each
-- state to when the transaction last entered it (for timers).
CREATE TABLE transactions (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  process TEXT NOT NULL,
  process_version INTEGER NOT NULL,
  state TEXT NOT NULL,
  version BIGINT NOT NULL,
  buyer_id TEXT NOT NULL REFERENCES users (id),
  seller_id TEXT NOT NULL REFERENCES users (id),
  subject_type TEXT,
  subject_id TEXT,
  amount BIGINT NOT NULL CHECK (amount >= 0),
  currency TEXT NOT NULL,
  title TEXT NOT NULL,
  entered TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  state_entered_at TEXT NOT NULL,
  ended_at TEXT
);
CREATE INDEX transactions_buyer ON transactions (buyer_id, id);
CREATE INDEX transactions_seller ON transactions (seller_id, id);
CREATE INDEX transactions_subject ON transactions (subject_type, subject_id);
CREATE INDEX transactions_kind_created ON transactions (kind, created_at);
CREATE INDEX transactions_kind_ended ON transactions (kind, ended_at);

-- What happened to a transaction, who did it and in which request. Rows are
-- only ever added.
CREATE TABLE transaction_history (
  id TEXT PRIMARY KEY,
  transaction_id TEXT NOT NULL REFERENCES transactions (id),
  transition TEXT NOT NULL,
  from_state TEXT,
  to_state TEXT NOT NULL,
  actor_type TEXT NOT NULL CHECK (actor_type IN ('buyer', 'seller', 'operator', 'system')),
  actor_id TEXT,
  reason TEXT,
  request_id TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX transaction_history_transaction ON transaction_history (transaction_id, id);
