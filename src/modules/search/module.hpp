// The search module: full-text search over products and over sellers'
// businesses, with filters, sorts, facet counts and cursor pages.
//
// The index is the module's own tables, kept up to date from the outbox:
// product.* (stock_changed too, when a SKU runs out or comes back),
// category.*, seller_profile.* and seller_products.* (a suspended seller's
// products leave, and come back) events make a worker re-read the
// current documents from their owner (Catalog::search_documents, a batch
// at once; the identity module's seller profile) and write them, or take
// them out when they should no longer be found. Re-reading makes the
// handlers idempotent and order-free. `souq search reindex` rebuilds the
// whole index the same way, a few hundred documents a statement.
//
// Words are matched exactly, and a query word of 5 letters or more that no
// document has also finds the indexed words one edit away (two from 8
// letters): "hedphones" finds "headphones". The words live beside the
// documents (TextIndex), where a query on words alone is also ranked.
// Filters, sorts and facets read a plain table with indexes; facet counts
// are SQL aggregates over it.
//
// Two caches stand in front: anonymous result pages for a second (as the
// other public lists; an index change on this node drops them), and the
// total and facets of matches over 10,000 products for ten seconds.
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/blocking.hpp"
#include "core/json.hpp"
#include "db/database.hpp"
#include "http/page_cache.hpp"
#include "http/router.hpp"
#include "jobs/queue.hpp"
#include "modules/catalog/module.hpp"
#include "modules/identity/module.hpp"
#include "modules/search/text_index.hpp"

namespace souq::search {

struct CountsCache;
struct ProductMatch;

struct Options {
  // Anonymous result pages are kept this long (0: not at all); an index
  // change on this node drops them at once, on other nodes within this.
  std::chrono::milliseconds page_cache_ttl{1000};
};

// GET /api/v1/search?type=products.
struct ProductQuery {
  std::string q;  // "" for none
  std::optional<std::string> category;  // slug or id: it and its descendants
  std::vector<std::string> brands, conditions, cities;  // any of
  std::optional<std::string> seller_id, currency;
  std::optional<int64_t> min_price, max_price;  // the lowest SKU price, in minor units of `currency`
  std::map<std::string, std::vector<std::string>> attributes;  // key → any of these values
  std::optional<double> lat, lng, radius_km;
  bool in_stock = false;
  std::string sort;  // relevance | newest | price_asc | price_desc | rating ("" : relevance with q, else newest)
  std::optional<std::vector<std::string>> facets;  // attribute keys; default: the category's facet attributes
  std::optional<json> cursor;
  int limit = 20;
};

// GET /api/v1/search?type=sellers.
struct SellerQuery {
  std::string q;
  std::vector<std::string> cities;
  std::string sort;  // relevance | newest
  std::optional<json> cursor;
  int limit = 20;
};

// One page: data {items, facets, total, expanded} and the next page's cursor.
struct Page {
  json data;
  json next_cursor;
};

struct ReindexOptions {
  bool fresh = false;  // empty the index first
  int batch = 200;     // documents per transaction
};

class Search {
 public:
  Search(db::Database& db, jobs::Queue& queue, jobs::Outbox& outbox, catalog::Catalog& catalog,
         identity::Identity& identity, Options options = {});
  ~Search();

  // The outbox subscriptions and the search.category job (a category's
  // products, a batch at a time).
  void register_jobs();

  Page products(const ProductQuery& q);
  Page sellers(const SellerQuery& q);

  // Re-reads documents and writes them to the index, or takes them out.
  void index_product(const std::string& product_id);
  void index_products(const std::vector<std::string>& product_ids);
  void index_seller(const std::string& profile_id);
  // Rebuilds the whole index; progress(done, total) as it goes. Documents
  // the owners no longer have are taken out at the end.
  void reindex(const ReindexOptions& o, const std::function<void(int64_t done, int64_t total)>& progress);

  api::PageCache& pages() { return pages_; }

 private:
  struct Categories;  // category summaries met in one transaction
  void on_event(const json& event);
  // Documents read in one go, written with a few multi-row statements.
  void index_products(db::Tx& tx, std::vector<std::string> product_ids, Categories& categories);
  void remove_products(db::Tx& tx, const std::vector<std::string>& product_ids);
  // Writes documents' rows (the key first) and their words; their docs, in order.
  std::vector<int64_t> upsert_documents(db::Tx& tx, const TextTable& table, std::vector<std::string> columns,
                                        const std::vector<db::Params>& rows, const std::vector<FieldWords>& text);
  void index_seller(db::Tx& tx, const std::string& profile_id);
  void remove_seller(db::Tx& tx, const std::string& user_id);
  // The next batch of a category's (or seller's) products, and a job for the rest.
  static constexpr int kFollowBatch = 200;
  void reindex_category(const std::string& category_id, const std::string& after);
  void reindex_seller(const std::string& seller_id, const std::string& after);
  void add_terms(db::Tx& tx, const std::vector<std::string>& words);
  // The index changes in `tx`: this node's cached result pages go at commit.
  void touched(db::Tx& tx) {
    tx.after_commit([this] { pages_.bump(); });
  }
  // The total and the facets of a match (from the counts cache when large).
  std::pair<int64_t, json> product_counts(db::Tx& tx, const ProductMatch& m, const ProductQuery& q);
  // One page of the match: data is the items.
  Page product_page(db::Tx& tx, const ProductMatch& m, const ProductQuery& q, const std::string& sort, int64_t total);
  // Each query word with the indexed words that may stand in for it;
  // `expanded` says which words were corrected to what.
  QueryWords expand(db::Tx& tx, const TextTable& table, const std::vector<std::string>& words, json& expanded);

  db::Database& db_;
  jobs::Queue& queue_;
  jobs::Outbox& outbox_;
  catalog::Catalog& catalog_;
  identity::Identity& identity_;
  std::unique_ptr<TextIndex> text_;
  std::unique_ptr<CountsCache> counts_;
  api::PageCache pages_;
  // Vocabulary words this process wrote lately (not written again).
  std::mutex terms_mutex_;
  std::unordered_set<std::string> known_terms_;
};

// GET /api/v1/search.
void register_routes(api::Router& router, Search& search, BlockingPool& blocking);

}  // namespace souq::search
