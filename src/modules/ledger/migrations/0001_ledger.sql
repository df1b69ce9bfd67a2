-- The ledger (ARCHITECTURE.md "Money"): accounts on a ledger per currency and
-- immutable transfers between them, after TigerBeetle's model.
--
-- An account's four balances are kept here and changed in the same
-- transaction as each transfer that touches it. `flags`: 1 = debits must not
-- exceed credits (a wallet never goes negative), 2 = credits must not exceed
-- debits. `key` names what the account is for, so finding or opening it is
-- one idempotent statement ("wallet:usr_…:EGP", "escrow:EGP").
CREATE TABLE ledger_accounts (
  id TEXT PRIMARY KEY,
  ledger TEXT NOT NULL,
  code TEXT NOT NULL,
  key TEXT NOT NULL UNIQUE,
  owner_id TEXT,
  flags INTEGER NOT NULL DEFAULT 0,
  debits_pending BIGINT NOT NULL DEFAULT 0,
  debits_posted BIGINT NOT NULL DEFAULT 0,
  credits_pending BIGINT NOT NULL DEFAULT 0,
  credits_posted BIGINT NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL
);
CREATE INDEX ledger_accounts_owner ON ledger_accounts (owner_id, ledger);

-- Transfers are never updated or deleted. `id` is the caller's and is the
-- transfer's idempotency key. `kind`: posted (moves at once), pending
-- (reserves), post / void / expire (resolve the pending transfer `pending_id`,
-- at most once: the unique index). `seq` orders a ledger's transfers and
-- `hash` = SHA-256(prev_hash, the transfer's fields): a chain per ledger.
CREATE TABLE ledger_transfers (
  id TEXT PRIMARY KEY,
  ledger TEXT NOT NULL,
  seq BIGINT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('posted', 'pending', 'post', 'void', 'expire')),
  debit_account_id TEXT NOT NULL REFERENCES ledger_accounts (id),
  credit_account_id TEXT NOT NULL REFERENCES ledger_accounts (id),
  amount BIGINT NOT NULL CHECK (amount >= 0),
  pending_id TEXT REFERENCES ledger_transfers (id),
  timeout_at TEXT,
  code TEXT NOT NULL,
  reference TEXT,
  batch_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  UNIQUE (ledger, seq)
);
CREATE UNIQUE INDEX ledger_transfers_resolves ON ledger_transfers (pending_id) WHERE pending_id IS NOT NULL;
CREATE INDEX ledger_transfers_debit ON ledger_transfers (debit_account_id, id);
CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit_account_id, id);
CREATE INDEX ledger_transfers_reference ON ledger_transfers (reference);

-- The head of each ledger's chain: locking it orders that ledger's transfers.
CREATE TABLE ledger_heads (
  ledger TEXT PRIMARY KEY,
  seq BIGINT NOT NULL,
  hash TEXT NOT NULL
);
