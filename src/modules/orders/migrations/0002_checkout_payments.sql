-- A checkout may be paid by more than one gateway payment: the one started
-- at checkout, and any the buyer starts again for what is still unpaid
-- (after a gateway error, or to pay later). Whichever succeeds pays the
-- orders still waiting; money beyond them stays in the buyer's wallet.
CREATE TABLE checkout_payments (
  payment_id TEXT PRIMARY KEY,
  checkout_id TEXT NOT NULL REFERENCES checkouts (id),
  amount BIGINT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX checkout_payments_checkout ON checkout_payments (checkout_id, created_at);
INSERT INTO checkout_payments (payment_id, checkout_id, amount, created_at)
  SELECT payment_id, id, total, created_at FROM checkouts WHERE payment_id IS NOT NULL;
