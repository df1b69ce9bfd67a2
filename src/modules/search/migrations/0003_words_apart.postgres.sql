-- A document's words move out of its row into a narrow table of their own
-- (as on SQLite, where FTS5 keeps them beside the documents): ranking a
-- broad query reads every match's words, and those rows were wide (the
-- category path, brand, city, prices …), so a match of 80,000 products read
-- most of the documents table. The words table is under half its size.
-- A document's words go with it.
CREATE TABLE search_products_text (
  doc BIGINT PRIMARY KEY REFERENCES search_products (doc) ON DELETE CASCADE,
  words TSVECTOR NOT NULL
);
INSERT INTO search_products_text (doc, words) SELECT doc, words FROM search_products;
CREATE INDEX search_products_text_words ON search_products_text USING GIN (words);
ALTER TABLE search_products DROP COLUMN words;

CREATE TABLE search_sellers_text (
  doc BIGINT PRIMARY KEY REFERENCES search_sellers (doc) ON DELETE CASCADE,
  words TSVECTOR NOT NULL
);
INSERT INTO search_sellers_text (doc, words) SELECT doc, words FROM search_sellers;
CREATE INDEX search_sellers_text_words ON search_sellers_text USING GIN (words);
ALTER TABLE search_sellers DROP COLUMN words;
