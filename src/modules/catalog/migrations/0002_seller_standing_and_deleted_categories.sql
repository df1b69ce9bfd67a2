-- Products of a seller whose account is suspended (or who is no longer an
-- approved seller) are hidden from everyone but the seller and admins. The
-- catalogue keeps the seller's standing on each product, following the
-- identity module's seller_profile.* events.
ALTER TABLE products ADD COLUMN seller_active INTEGER NOT NULL DEFAULT 1;

-- A category that soft-deleted products still name is deleted softly too:
-- the row stays for them (their history and orders show it), leaves the
-- tree, and gives up its slug.
ALTER TABLE categories ADD COLUMN deleted_at TEXT;
