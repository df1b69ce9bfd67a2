-- Attribute rows carry their product's cat0 … cat2, so that a category's
-- (or the whole catalogue's) counts of an attribute's values are one range
-- of an index, without visiting the products. Attribute filters probe the
-- primary key (doc, key, value_key); the old (key, value_key, doc) index is
-- no longer read.
ALTER TABLE search_product_attributes ADD COLUMN cat0 TEXT;
ALTER TABLE search_product_attributes ADD COLUMN cat1 TEXT;
ALTER TABLE search_product_attributes ADD COLUMN cat2 TEXT;
UPDATE search_product_attributes
   SET (cat0, cat1, cat2) = (SELECT d.cat0, d.cat1, d.cat2 FROM search_products d WHERE d.doc = search_product_attributes.doc);
DROP INDEX search_product_attributes_value;
CREATE INDEX search_product_attributes_browse ON search_product_attributes (key, cat0, cat1, cat2, value_key, value);
