-- Payments: money coming in through a gateway (or a wallet), for a
-- transaction or a wallet top-up. The money itself moves only by ledger
-- transfers; these rows say what was asked of the gateway and what it said.
CREATE TABLE payments (
  id TEXT PRIMARY KEY,
  payer_id TEXT NOT NULL,
  purpose TEXT NOT NULL CHECK (purpose IN ('transaction', 'topup')),
  transaction_id TEXT,
  amount BIGINT NOT NULL CHECK (amount > 0),
  currency TEXT NOT NULL,
  provider TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'flagged')),
  provider_ref TEXT,
  client_secret TEXT,
  return_url TEXT,
  recipient TEXT NOT NULL,
  failure_code TEXT,
  failure_message TEXT,
  flag_reason TEXT,
  funded TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  succeeded_at TEXT
);
CREATE INDEX payments_payer ON payments (payer_id, id);
CREATE INDEX payments_transaction ON payments (transaction_id);
CREATE INDEX payments_status ON payments (status, id);
CREATE UNIQUE INDEX payments_provider_ref ON payments (provider, provider_ref) WHERE provider_ref IS NOT NULL;

-- Every webhook delivery as it arrived (seed 004's durable ingress), before
-- anything else is done with it; then what became of it.
CREATE TABLE payment_webhooks (
  id TEXT PRIMARY KEY,
  provider TEXT NOT NULL,
  headers TEXT NOT NULL,
  body TEXT NOT NULL,
  received_at TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('received', 'rejected', 'accepted', 'duplicate', 'ignored', 'processed', 'flagged', 'failed')),
  reason TEXT,
  event_id TEXT,
  event_type TEXT,
  payment_id TEXT,
  replays INTEGER NOT NULL DEFAULT 0,
  processed_at TEXT
);
CREATE INDEX payment_webhooks_status ON payment_webhooks (status, id);
CREATE INDEX payment_webhooks_event ON payment_webhooks (provider, event_id);

-- One row per provider event: the deduplication of deliveries.
CREATE TABLE payment_events (
  provider TEXT NOT NULL,
  event_id TEXT NOT NULL,
  delivery_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (provider, event_id)
);

-- Payouts: a wallet's money sent to the owner's bank or provider account.
CREATE TABLE payouts (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  reference TEXT NOT NULL,
  amount BIGINT NOT NULL CHECK (amount > 0),
  currency TEXT NOT NULL,
  provider TEXT NOT NULL,
  destination TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('requested', 'paid', 'failed')),
  provider_ref TEXT,
  failure_message TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (user_id, reference)
);
CREATE INDEX payouts_user ON payouts (user_id, id);

-- Disputes over escrowed transactions. Funds stay held while open; an admin
-- resolves by release, refund or split (buyer_amount back to the buyer).
CREATE TABLE disputes (
  id TEXT PRIMARY KEY,
  transaction_id TEXT NOT NULL,
  opened_by TEXT NOT NULL,
  opener_role TEXT NOT NULL,
  reason TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
  outcome TEXT CHECK (outcome IN ('release', 'refund', 'split')),
  buyer_amount BIGINT,
  resolved_by TEXT,
  resolution_reason TEXT,
  created_at TEXT NOT NULL,
  resolved_at TEXT
);
CREATE UNIQUE INDEX disputes_one_open ON disputes (transaction_id) WHERE status = 'open';
CREATE INDEX disputes_status ON disputes (status, id);

CREATE TABLE dispute_evidence (
  id TEXT PRIMARY KEY,
  dispute_id TEXT NOT NULL REFERENCES disputes (id),
  author_id TEXT NOT NULL,
  text TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX dispute_evidence_dispute ON dispute_evidence (dispute_id, id);

-- Platform commission per category ('*': every other), in basis points, with
-- a minimum per currency (JSON {"EGP": 500}).
CREATE TABLE commission_rules (
  category TEXT PRIMARY KEY,
  basis_points INTEGER NOT NULL CHECK (basis_points >= 0 AND basis_points <= 10000),
  minimums TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

-- A secret per built-in provider made once when none is configured (the
-- sandbox's webhook signing secret), shared by every node.
CREATE TABLE payment_secrets (
  provider TEXT PRIMARY KEY,
  secret TEXT NOT NULL,
  created_at TEXT NOT NULL
);
