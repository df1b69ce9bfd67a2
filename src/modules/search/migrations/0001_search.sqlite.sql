-- The search index (SQLite). A product found by search is one row of
-- search_products (what filters, sorts and facets read, with indexes), one
-- row of search_products_text (its words, FTS5, rowid = doc) and its hit.
-- The words are made by the search module (lower-cased, folded, split), so
-- the FTS5 tokenizer only splits on the spaces between them.
CREATE TABLE search_products (
  doc INTEGER PRIMARY KEY,
  product_id TEXT NOT NULL UNIQUE,
  seller_id TEXT NOT NULL,
  category_id TEXT NOT NULL,
  -- The category's ancestry, root first: cat<N> is the category at depth N,
  -- so "in this category or below" is one equality.
  cat0 TEXT, cat1 TEXT, cat2 TEXT, cat3 TEXT, cat4 TEXT, cat5 TEXT, cat6 TEXT, cat7 TEXT,
  brand TEXT,
  brand_key TEXT,
  condition TEXT NOT NULL,
  city TEXT,
  city_key TEXT,
  lat DOUBLE PRECISION,
  lng DOUBLE PRECISION,
  currency TEXT NOT NULL,
  price_min BIGINT NOT NULL,
  price_max BIGINT NOT NULL,
  price_bucket BIGINT NOT NULL,  -- price_min's facet bucket: 1, 2 or 5 times a power of ten
  in_stock INTEGER NOT NULL,
  rating DOUBLE PRECISION NOT NULL,  -- 0 while unrated
  rating_count BIGINT NOT NULL,
  published_at TEXT NOT NULL,
  indexed_at TEXT NOT NULL
);
CREATE INDEX search_products_newest ON search_products (published_at, product_id);
CREATE INDEX search_products_price ON search_products (price_min, product_id);
CREATE INDEX search_products_rating ON search_products (rating, rating_count, product_id);
CREATE INDEX search_products_seller ON search_products (seller_id, published_at);
CREATE INDEX search_products_brand ON search_products (brand_key, brand);
CREATE INDEX search_products_city ON search_products (city_key);
CREATE INDEX search_products_point ON search_products (lat, lng) WHERE lat IS NOT NULL;
-- Facet counts of a category (and of everything) read this index alone.
CREATE INDEX search_products_browse ON search_products (cat0, cat1, cat2, brand_key, brand, currency, price_bucket);
CREATE INDEX search_products_cat0 ON search_products (cat0, published_at, product_id);
CREATE INDEX search_products_cat1 ON search_products (cat1, published_at, product_id) WHERE cat1 IS NOT NULL;
CREATE INDEX search_products_cat2 ON search_products (cat2, published_at, product_id) WHERE cat2 IS NOT NULL;
CREATE INDEX search_products_cat3 ON search_products (cat3, published_at, product_id) WHERE cat3 IS NOT NULL;
CREATE INDEX search_products_cat4 ON search_products (cat4, published_at, product_id) WHERE cat4 IS NOT NULL;
CREATE INDEX search_products_cat5 ON search_products (cat5, published_at, product_id) WHERE cat5 IS NOT NULL;
CREATE INDEX search_products_cat6 ON search_products (cat6, published_at, product_id) WHERE cat6 IS NOT NULL;
CREATE INDEX search_products_cat7 ON search_products (cat7, published_at, product_id) WHERE cat7 IS NOT NULL;

CREATE VIRTUAL TABLE search_products_text USING fts5 (
  title, brand, category, attributes, description, tokenize = 'ascii', detail = 'column'
);

-- The result as a results page shows it, made when the product was indexed
-- (apart, so that scans of search_products stay narrow).
CREATE TABLE search_product_hits (
  doc INTEGER PRIMARY KEY,
  hit TEXT NOT NULL
);

-- A product's attribute values (its own and its SKUs'), each once: what
-- attribute filters and facets read. value_key is the folded value.
CREATE TABLE search_product_attributes (
  doc BIGINT NOT NULL,
  key TEXT NOT NULL,
  value_key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (doc, key, value_key)
) WITHOUT ROWID;
CREATE INDEX search_product_attributes_value ON search_product_attributes (key, value_key, doc);

-- Approved sellers (their businesses), as search finds them.
CREATE TABLE search_sellers (
  doc INTEGER PRIMARY KEY,
  user_id TEXT NOT NULL UNIQUE,
  profile_id TEXT NOT NULL,
  name_key TEXT NOT NULL,
  city TEXT,
  city_key TEXT,
  approved_at TEXT NOT NULL,
  hit TEXT NOT NULL,
  indexed_at TEXT NOT NULL
);
CREATE INDEX search_sellers_newest ON search_sellers (approved_at, user_id);
CREATE INDEX search_sellers_city ON search_sellers (city_key);

CREATE VIRTUAL TABLE search_sellers_text USING fts5 (
  name, city, description, tokenize = 'ascii', detail = 'column'
);

-- Every indexed word of 4 letters or more (without digits), for typo
-- tolerance: a misspelt query word looks here for words one or two edits
-- away. A word of a single edit shares its first two or its last two letters
-- with the word it was meant to be, so those (with the length) are indexed.
-- Words stay when their documents go (a search for them then finds nothing);
-- `souq search reindex --fresh` starts the vocabulary again.
CREATE TABLE search_terms (
  term TEXT PRIMARY KEY,
  letters INTEGER NOT NULL,
  head TEXT NOT NULL,
  tail TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX search_terms_head ON search_terms (head, letters);
CREATE INDEX search_terms_tail ON search_terms (tail, letters);
