-- The category tree. `path` lists the ids from the root down to this
-- category ("/cat_a/cat_b/"), so "this category and its descendants" is one
-- prefix match; `attributes` declares the typed attributes products in this
-- category (and its descendants) carry.
CREATE TABLE categories (
  id TEXT PRIMARY KEY,
  parent_id TEXT REFERENCES categories (id),
  slug TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  position INTEGER NOT NULL DEFAULT 0,
  path TEXT NOT NULL,
  depth INTEGER NOT NULL,
  attributes TEXT NOT NULL DEFAULT '[]',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX categories_parent ON categories (parent_id, position);
CREATE INDEX categories_path ON categories (path);

-- Products: what an approved seller sells. Prices live on the SKUs; the
-- product keeps their range (and currency) for lists and search.
CREATE TABLE products (
  id TEXT PRIMARY KEY,
  seller_id TEXT NOT NULL REFERENCES users (id),
  title TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  brand TEXT,
  category_id TEXT NOT NULL REFERENCES categories (id),
  attributes TEXT NOT NULL DEFAULT '{}',
  condition TEXT NOT NULL CHECK (condition IN ('new', 'used', 'refurbished')),
  city TEXT,
  lat DOUBLE PRECISION,
  lng DOUBLE PRECISION,
  status TEXT NOT NULL CHECK (status IN ('draft', 'pending_review', 'active', 'rejected', 'archived')),
  rejection_reason TEXT,
  currency TEXT NOT NULL,
  price_min BIGINT NOT NULL,
  price_max BIGINT NOT NULL,
  rating_count BIGINT NOT NULL DEFAULT 0,
  rating_total BIGINT NOT NULL DEFAULT 0,
  version BIGINT NOT NULL DEFAULT 1,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  published_at TEXT,
  deleted_at TEXT
);
CREATE INDEX products_seller ON products (seller_id, id);
CREATE INDEX products_status ON products (status, id);
CREATE INDEX products_category ON products (category_id, status, id);

-- Variants. `stock` is on hand; `reserved` is held by orders awaiting
-- payment, so what can be bought is stock - reserved. Checkout reserves with
-- a guarded update; payment commits (both go down); cancelling releases.
CREATE TABLE skus (
  id TEXT PRIMARY KEY,
  product_id TEXT NOT NULL REFERENCES products (id),
  code TEXT,
  price BIGINT NOT NULL CHECK (price > 0),
  currency TEXT NOT NULL,
  stock BIGINT NOT NULL CHECK (stock >= 0),
  reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= stock),
  attributes TEXT NOT NULL DEFAULT '{}',
  position INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  deleted_at TEXT
);
CREATE INDEX skus_product ON skus (product_id, position);

-- Images: the original as uploaded, then WebP renditions made by a job.
CREATE TABLE product_images (
  id TEXT PRIMARY KEY,
  product_id TEXT NOT NULL REFERENCES products (id),
  position INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  bytes BIGINT NOT NULL,
  width INTEGER,
  height INTEGER,
  status TEXT NOT NULL CHECK (status IN ('processing', 'ready', 'failed')),
  sizes TEXT NOT NULL DEFAULT '[]',
  failure TEXT,
  created_at TEXT NOT NULL,
  deleted_at TEXT
);
CREATE INDEX product_images_product ON product_images (product_id, position);

-- Reviews: one per purchased order line, after delivery. The product's and
-- the seller's aggregates change in the same transaction.
CREATE TABLE product_reviews (
  id TEXT PRIMARY KEY,
  product_id TEXT NOT NULL REFERENCES products (id),
  seller_id TEXT NOT NULL REFERENCES users (id),
  buyer_id TEXT NOT NULL REFERENCES users (id),
  order_id TEXT NOT NULL,
  order_item_id TEXT NOT NULL UNIQUE,
  sku_id TEXT NOT NULL,
  rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
  title TEXT NOT NULL DEFAULT '',
  body TEXT NOT NULL DEFAULT '',
  reply TEXT,
  replied_at TEXT,
  status TEXT NOT NULL CHECK (status IN ('published', 'hidden')),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX product_reviews_product ON product_reviews (product_id, status, id);
CREATE INDEX product_reviews_seller ON product_reviews (seller_id, id);

CREATE TABLE seller_review_stats (
  seller_id TEXT PRIMARY KEY REFERENCES users (id),
  rating_count BIGINT NOT NULL,
  rating_total BIGINT NOT NULL
);
