-- Products of a seller whose account is suspended (or who is no longer an
-- approved seller) are hidden from everyone but the seller and admins. The
-- catalogue keeps the seller's standing on each product, following the
-- identity module's seller_profile.* events.
ALTER TABLE products ADD COLUMN seller_active INTEGER NOT NULL DEFAULT 1;

-- A category that soft-deleted products still name is deleted softly too:
-- the row stays for them (their history and orders show it), leaves the
-- tree, and gives up its slug.
ALTER TABLE categories ADD COLUMN deleted_at TEXT;

-- Work the catalogue owes once, done by a job at the next start: products
-- of sellers suspended before seller_active existed get it set
-- (catalog.seller_standing asks the identity module, page by page).
CREATE TABLE catalog_upkeep (
  task TEXT PRIMARY KEY
);
INSERT INTO catalog_upkeep (task) VALUES ('seller_standing');
