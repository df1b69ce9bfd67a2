-- Ratings between the parties of a transaction, once the process opened them
-- (the enable_reviews action, on completion). Each side rates the other once.
CREATE TABLE rating_windows (
  transaction_id TEXT PRIMARY KEY,
  buyer_id TEXT NOT NULL REFERENCES users (id),
  seller_id TEXT NOT NULL REFERENCES users (id),
  opened_at TEXT NOT NULL,
  closes_at TEXT NOT NULL
);

CREATE TABLE ratings (
  id TEXT PRIMARY KEY,
  transaction_id TEXT NOT NULL REFERENCES rating_windows (transaction_id),
  rater_id TEXT NOT NULL REFERENCES users (id),
  ratee_id TEXT NOT NULL REFERENCES users (id),
  ratee_role TEXT NOT NULL CHECK (ratee_role IN ('buyer', 'seller')),
  score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
  comment TEXT,
  created_at TEXT NOT NULL,
  UNIQUE (transaction_id, rater_id)
);
CREATE INDEX ratings_ratee ON ratings (ratee_id, ratee_role, id);

-- Per user and role: how many ratings and their sum, changed in the same
-- transaction as each rating, so averages are exact and cheap to read.
CREATE TABLE rating_summaries (
  user_id TEXT NOT NULL REFERENCES users (id),
  role TEXT NOT NULL CHECK (role IN ('buyer', 'seller')),
  rating_count BIGINT NOT NULL,
  score_total BIGINT NOT NULL,
  PRIMARY KEY (user_id, role)
);
