-- A buyer's cart: one line per SKU, with the price the buyer last saw (a
-- line whose price changed since says so when the cart is read).
CREATE TABLE cart_items (
  buyer_id TEXT NOT NULL REFERENCES users (id),
  sku_id TEXT NOT NULL,
  quantity BIGINT NOT NULL CHECK (quantity > 0),
  price_seen BIGINT NOT NULL,
  currency TEXT NOT NULL,
  added_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (buyer_id, sku_id)
);

-- One checkout of a cart: an order per seller. `payment_id` is the gateway
-- payment that pays them all (into the buyer's wallet, then into each
-- order's escrow), when one was started.
CREATE TABLE checkouts (
  id TEXT PRIMARY KEY,
  buyer_id TEXT NOT NULL REFERENCES users (id),
  total BIGINT NOT NULL,
  currency TEXT NOT NULL,
  provider TEXT,
  payment_id TEXT UNIQUE,
  created_at TEXT NOT NULL
);
CREATE INDEX checkouts_buyer ON checkouts (buyer_id, id);

-- What an order (a transaction of kind "order") carries beyond the
-- transaction: its checkout, address, shipment, and where its stock is.
CREATE TABLE order_details (
  order_id TEXT PRIMARY KEY,
  checkout_id TEXT NOT NULL REFERENCES checkouts (id),
  buyer_id TEXT NOT NULL REFERENCES users (id),
  seller_id TEXT NOT NULL REFERENCES users (id),
  subtotal BIGINT NOT NULL,
  currency TEXT NOT NULL,
  shipping_address TEXT,
  stock TEXT NOT NULL CHECK (stock IN ('reserved', 'committed', 'released', 'returned')),
  carrier TEXT,
  tracking_number TEXT,
  shipped_at TEXT,
  delivered_at TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX order_details_buyer ON order_details (buyer_id, order_id);
CREATE INDEX order_details_seller ON order_details (seller_id, order_id);
CREATE INDEX order_details_checkout ON order_details (checkout_id);

-- The lines of an order, priced by the server at checkout and frozen.
CREATE TABLE order_items (
  id TEXT PRIMARY KEY,
  order_id TEXT NOT NULL REFERENCES order_details (order_id),
  product_id TEXT NOT NULL,
  sku_id TEXT NOT NULL,
  category TEXT NOT NULL,
  title TEXT NOT NULL,
  attributes TEXT NOT NULL DEFAULT '{}',
  image TEXT,
  unit_price BIGINT NOT NULL,
  quantity BIGINT NOT NULL CHECK (quantity > 0),
  line_total BIGINT NOT NULL,
  currency TEXT NOT NULL
);
CREATE INDEX order_items_order ON order_items (order_id);
CREATE INDEX order_items_product ON order_items (product_id, order_id);
