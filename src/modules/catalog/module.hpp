// The catalog module (seed 003's product service): the category tree,
// products with their SKUs and stock, images, and product reviews.
//
// Stock: a SKU has `stock` on hand and `reserved` (held by orders awaiting
// payment). The orders module reserves at checkout, commits when paid,
// releases when an unpaid order lapses or is cancelled, and restocks when a
// paid order is cancelled — each a guarded update in the caller's
// transaction, so fifty buyers racing for the last three units make exactly
// three orders.
//
// Product pages are served from an in-process cache of rendered JSON: a
// change forgets the product on this node at commit and on the others
// through the bus (`use_bus`); an entry lives at most `cache_ttl` either way.
// A seller's pages go together when something every page embeds changes
// (the seller's rating, name or standing).
//
// Products of a seller who is suspended (or no longer approved) are hidden
// from everyone but their owner and admins: the catalogue follows the
// identity module's seller_profile.* events into products.seller_active and
// says so with seller_products.changed {seller_id, active}.
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/blocking.hpp"
#include "core/json.hpp"
#include "db/database.hpp"
#include "http/page_cache.hpp"
#include "http/router.hpp"
#include "jobs/queue.hpp"
#include "modules/catalog/product_cache.hpp"
#include "modules/identity/module.hpp"
#include "modules/identity/policy.hpp"
#include "storage/storage.hpp"

namespace souq::catalog {

struct Options {
  bool moderation = false;          // new and edited products wait for an admin
  std::string media_base_url;       // where image URLs point (a CDN); "" → {public_url}/media
  std::chrono::seconds cache_ttl{300};
  size_t cache_capacity = 200000;   // products
  std::vector<int> image_widths{1280, 640, 240};
  size_t max_image = 10 * 1024 * 1024;
  int max_images = 10;
};

// A SKU as checkout prices it.
struct SkuQuote {
  std::string sku_id, product_id, seller_id, title, currency, category_id;
  std::string product_status;  // active, or why it cannot be bought
  int64_t price = 0, stock = 0, reserved = 0;
  json attributes = json::object();
  json image = nullptr;  // the URL of the first ready image's smallest rendition, or null
  bool deleted = false;
  bool seller_active = true;  // the seller is not suspended
  int64_t available() const { return stock - reserved; }
  bool sellable() const { return !deleted && seller_active && product_status == "active"; }
};

struct StockLine {
  std::string sku_id;
  int64_t quantity = 0;
};

// A line the buyer bought, as the orders module reports it (for reviews).
struct PurchasedLine {
  std::string order_id, order_item_id, sku_id;
  bool delivered = false;
};
using PurchasedLines =
    std::function<std::vector<PurchasedLine>(db::Tx& tx, const std::string& buyer_id, const std::string& product_id)>;

struct ProductFilter {
  std::optional<std::string> seller_id, category_id, status;
  bool include_descendants = true;
  bool public_only = false;  // what anyone may see: active, of a seller in good standing
  std::optional<std::string> before;
  int limit = 20;
};

struct SeedOptions {
  int64_t products = 1'000'000;
  int sellers = 1000;
  int skus_per_product = 2;
  uint64_t random_seed = 1;
};

class Catalog {
 public:
  Catalog(db::Database& db, jobs::Queue& queue, jobs::Outbox& outbox, identity::Identity& identity,
          storage::Storage& files, Options options);

  // catalog.image (renditions), catalog.seller_standing; the
  // seller_profile.* consumer; queues the work a migration left.
  void register_jobs();
  // Reviews ask the orders module what the buyer bought.
  void use_purchases(PurchasedLines fn) { purchases_ = std::move(fn); }
  // Other nodes hear of changed products and sellers through `publish`
  // (topic kProductChanged or kSellerChanged, and the id); what they say
  // arrives at forget(), forget_seller() and (kCatalogChanged) forget_all().
  static constexpr const char* kProductChanged = "product.changed";
  static constexpr const char* kSellerChanged = "seller.changed";
  static constexpr const char* kCatalogChanged = "catalog.changed";
  using Publish = std::function<void(const std::string& topic, const std::string& id)>;
  void use_bus(Publish publish) { publish_ = std::move(publish); }
  void forget(const std::string& product_id) {
    cache_.forget(product_id);
    list_cache_.bump();
  }
  void forget_seller(const std::string& seller_id) {
    cache_.forget_seller(seller_id);
    list_cache_.bump();
  }
  void forget_all() {
    cache_.forget_all();
    list_cache_.bump();
  }
  // Image URLs start here (set once the server knows its address).
  void use_media_base(const std::string& url);

  // ---- categories
  // The whole tree, ordered by position then name: [{id, slug, name, …, children: […]}].
  json category_tree(db::Tx& tx);
  json categories() {
    return db_.read([&](db::Tx& tx) { return category_tree(tx); });
  }
  json create_category(const identity::Principal& admin, const json& fields, const std::string& request_id);
  json update_category(const identity::Principal& admin, const std::string& id, const json& changes,
                       const std::string& request_id);
  // 409 category_in_use while it has children or products. Returns its id.
  std::string delete_category(const identity::Principal& admin, const std::string& id, const std::string& request_id);
  // By id or slug: {id, slug, name, path, attributes (effective)}; nullopt when absent.
  // `share`: kept from being deleted until `tx` ends (a product is filed there).
  std::optional<json> find_category(db::Tx& tx, const std::string& id_or_slug, bool share = false);

  // ---- products
  // 403 seller_not_approved unless `who` is an approved seller.
  static void require_seller(const identity::Principal& who);
  json create_product(const identity::Principal& who, const json& fields, const std::string& request_id);
  // Owners and admins see any of theirs (not deleted, for owners); others
  // only active ones (404 otherwise).
  json product(db::Tx& tx, const std::string& id, const identity::Principal* viewer);
  // The public page of an active product, rendered from the database and
  // kept in the cache (the route looks there first); nullptr when the
  // product is not public.
  std::shared_ptr<const std::string> public_product(const std::string& id);
  json update_product(const identity::Principal& who, const std::string& id, const json& changes,
                      const std::string& request_id);
  void delete_product(const identity::Principal& who, const std::string& id, const std::string& request_id);
  std::pair<json, json> products(db::Tx& tx, const ProductFilter& filter, const identity::Principal* viewer);
  // What anyone sees of a list, rendered: each product's public page, from
  // the page cache (rendered and kept there when missing; `ticket` is the
  // cache's, taken before the transaction began). {JSON array, next cursor}.
  std::pair<std::string, json> public_products(db::Tx& tx, ProductFilter filter, uint64_t ticket);
  json add_sku(const identity::Principal& who, const std::string& product_id, const json& fields,
               const std::string& request_id);
  json update_sku(const identity::Principal& who, const std::string& product_id, const std::string& sku_id,
                  const json& changes, const std::string& request_id);
  json delete_sku(const identity::Principal& who, const std::string& product_id, const std::string& sku_id,
                  const std::string& request_id);
  // Moderation: approve (active) or reject (with a reason). Audited.
  json moderate(const identity::Principal& admin, const std::string& id, bool approve, const std::string& reason,
                const std::string& request_id);
  // Reports name products and reviews; their owner is who a decision acts on.
  std::optional<std::string> owner_of(db::Tx& tx, const std::string& type, const std::string& id);

  // ---- images
  json add_image(const identity::Principal& who, const std::string& product_id, const std::string& content_type,
                 const std::string& bytes, const std::string& request_id);
  json delete_image(const identity::Principal& who, const std::string& product_id, const std::string& image_id,
                    const std::string& request_id);
  // A stored rendition under /media/ (products/{prod}/{img}/{w}.webp).
  std::optional<std::string> media(const std::string& key);
  // Makes the WebP renditions of one image (the job).
  void render_image(const std::string& image_id);

  // ---- stock, for orders (in the caller's transaction)
  std::vector<SkuQuote> quote(db::Tx& tx, const std::vector<std::string>& sku_ids);
  // 409 insufficient_stock (details: sku_id, requested, available) for the
  // first line that cannot be held; the caller's transaction then rolls back.
  void reserve(db::Tx& tx, const std::vector<StockLine>& lines, const std::string& request_id);
  void commit(db::Tx& tx, const std::vector<StockLine>& lines, const std::string& request_id);
  void release(db::Tx& tx, const std::vector<StockLine>& lines, const std::string& request_id);
  void restock(db::Tx& tx, const std::vector<StockLine>& lines, const std::string& request_id);

  // ---- reviews
  json create_review(const identity::Principal& who, const std::string& product_id, const json& fields,
                     const std::string& request_id);
  std::pair<json, json> reviews(db::Tx& tx, const std::string& product_id, const std::optional<std::string>& before,
                                int limit);
  json reply_to_review(const identity::Principal& who, const std::string& review_id, const std::string& text,
                       const std::string& request_id);
  // Admins hide or show a review (a report's outcome). Audited.
  json set_review_status(const identity::Principal& admin, const std::string& review_id, const std::string& status,
                         const std::string& reason, const std::string& request_id);

  // ---- search
  // The documents the search index keeps for these products: everything a
  // filter, facet or sort needs. Products that should not be found (not
  // active, deleted, absent, or of a suspended seller) have none.
  std::vector<json> search_documents(db::Tx& tx, const std::vector<std::string>& product_ids);
  // Ids of every product (or one seller's), in id order after `after` (reindexing).
  std::vector<std::string> product_ids(db::Tx& tx, const std::string& after, int limit,
                                       const std::optional<std::string>& seller_id = std::nullopt);

  // Fills the catalogue (souq seed): categories, approved sellers, products
  // with SKUs; progress(products made so far).
  void seed(const SeedOptions& o, const std::function<void(int64_t)>& progress);

  const Options& options() const { return options_; }
  db::Database& db() { return db_; }
  ProductCache& cache() { return cache_; }
  // Anonymous pages of the product list, briefly (any change on this node clears them).
  api::PageCache& list_cache() { return list_cache_; }

 private:
  // What showing products needs besides their rows, read for all at once (documents.cpp).
  struct Related;
  Related related(db::Tx& tx, const std::vector<db::Row>& products);
  json render_row(const db::Row& product, const Related& related, bool owner_view) const;
  json render_product(db::Tx& tx, const db::Row& product, bool owner_view);
  // The rows of one page of a list (limit + 1 of them), newest first.
  db::Rows list_rows(db::Tx& tx, const ProductFilter& filter);
  // The smallest rendition of the first ready image of `images` (a product's, in order), or null.
  json thumbnail(const std::string& product_id, const std::vector<db::Row>& images) const;
  // The seller's standing changed (seller_profile.* events): their products follow.
  void on_seller_event(const json& event);
  void refresh_seller(const std::string& seller_id, const std::string& request_id);
  // Every seller's, a page a job after `after` (catalog.seller_standing).
  void refresh_sellers(const std::string& after);
  // After stock moved: pages forgotten; product.stock_changed where a SKU
  // ran out or came back (product id, crossed zero).
  void stock_changed(db::Tx& tx, const std::vector<std::pair<std::string, bool>>& touched, const std::string& request_id);
  enum class Crossing { none, to_zero, from_zero };
  void move_stock(db::Tx& tx, const std::vector<StockLine>& lines, const char* change, Crossing crossing,
                  const std::function<void(const StockLine&)>& refused, const std::string& request_id);
  // Loads the product for its owner (or an admin) to change, locked unless
  // `lock` is false (a read-only transaction cannot lock): 404 when absent or
  // deleted, 403 not_product_owner for another seller.
  db::Row owned_product(db::Tx& tx, const identity::Principal& who, const std::string& id, bool lock = true);
  // After a change in `tx`: the version goes up, prices are recomputed, an
  // outbox event says so, and every node forgets its cached page at commit.
  void changed(db::Tx& tx, const std::string& product_id, const std::string& event, const std::string& request_id);
  // The cached page of the product goes, on every node, when `tx` commits.
  void forget_at_commit(db::Tx& tx, const std::string& product_id);
  // Every cached page of the seller goes, on every node, when `tx` commits.
  void forget_seller_at_commit(db::Tx& tx, const std::string& seller_id);
  // Every cached page, on every node, when `tx` commits.
  void forget_all_at_commit(db::Tx& tx);
  json image_urls(const std::string& product_id, const std::string& image_id, const json& sizes) const;
  json effective_attributes(db::Tx& tx, const std::string& category_path);
  // 422 invalid_attributes unless every value is an attribute the category
  // defines, of its type (and, with require_all, every required one is set).
  void check_attributes(const json& definitions, const json& values, bool require_all);
  // The same for the variant attributes of SKUs (never all required).
  void check_sku_attributes(const json& definitions, const json& skus);
  // The effective attribute definitions of a product's category.
  json product_definitions(db::Tx& tx, const std::string& category_id);
  std::string media_base() const;

  db::Database& db_;
  jobs::Queue& queue_;
  jobs::Outbox& outbox_;
  identity::Identity& identity_;
  storage::Storage& files_;
  Options options_;
  ProductCache cache_;
  api::PageCache list_cache_{std::chrono::milliseconds(1000), 2000};
  PurchasedLines purchases_;
  Publish publish_;
  mutable std::mutex media_mutex_;
  std::string media_base_;
};

// catalog.manage (admin categories and moderation), products.sell (approved sellers).
void register_policies(identity::Policy& policy);
// /api/v1/categories, /api/v1/admin/categories, /api/v1/products…, /api/v1/reviews…,
// /api/v1/admin/products…, /media/….
void register_routes(api::Router& router, Catalog& catalog, identity::Identity& identity,
                     const identity::Policy& policy, BlockingPool& blocking);

}  // namespace souq::catalog
