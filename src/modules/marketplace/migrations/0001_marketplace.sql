-- Buy requests (seed 000) and purchase requests (seed 004): what a buyer
-- wants, for how much, where, until when. `process` is the process a deal on
-- it will follow. `offer_count` counts offers not withdrawn; it changes in the
-- same transaction as the offers. `search_text` is the lower-cased title and
-- description, for the text filter.
CREATE TABLE requests (
  id TEXT PRIMARY KEY,
  buyer_id TEXT NOT NULL REFERENCES users (id),
  title TEXT NOT NULL,
  description TEXT NOT NULL,
  category TEXT NOT NULL,
  quantity INTEGER NOT NULL CHECK (quantity > 0),
  budget_min BIGINT NOT NULL CHECK (budget_min >= 0),
  budget_max BIGINT NOT NULL,
  currency TEXT NOT NULL,
  city TEXT NOT NULL,
  lat DOUBLE PRECISION,
  lng DOUBLE PRECISION,
  images TEXT NOT NULL,
  process TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'closed', 'cancelled', 'expired')),
  offer_count INTEGER NOT NULL DEFAULT 0 CHECK (offer_count >= 0),
  accepted_offer_id TEXT,
  cancel_reason TEXT,
  search_text TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  closed_at TEXT,
  CHECK (budget_min <= budget_max)
);
CREATE INDEX requests_status ON requests (status, id);
CREATE INDEX requests_status_category ON requests (status, category, id);
CREATE INDEX requests_status_city ON requests (status, city, id);
CREATE INDEX requests_status_expires ON requests (status, expires_at, id);
CREATE INDEX requests_buyer ON requests (buyer_id, id);
CREATE INDEX requests_created ON requests (created_at);

-- A seller's answer to a request. At most one pending offer per seller and
-- request.
CREATE TABLE offers (
  id TEXT PRIMARY KEY,
  request_id TEXT NOT NULL REFERENCES requests (id),
  seller_id TEXT NOT NULL REFERENCES users (id),
  price BIGINT NOT NULL CHECK (price >= 0),
  currency TEXT NOT NULL,
  message TEXT NOT NULL,
  delivery_days INTEGER NOT NULL CHECK (delivery_days > 0),
  valid_until TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected', 'withdrawn', 'expired')),
  status_reason TEXT,
  deal_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX offers_request ON offers (request_id, id);
CREATE INDEX offers_seller ON offers (seller_id, id);
CREATE INDEX offers_created ON offers (created_at);
CREATE UNIQUE INDEX offers_one_pending ON offers (request_id, seller_id) WHERE status = 'pending';

-- The categories a seller serves: their feed of open requests.
CREATE TABLE seller_categories (
  seller_id TEXT NOT NULL REFERENCES users (id),
  category TEXT NOT NULL,
  PRIMARY KEY (seller_id, category)
);
CREATE INDEX seller_categories_category ON seller_categories (category);
