// The marketplace module: the reverse marketplace of seeds 000 and 004.
// Buyers post requests for what they want; approved sellers answer with
// offers; the buyer accepts one, and a deal (a transaction on the request's
// process) carries it from there.
#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/blocking.hpp"
#include "core/json.hpp"
#include "db/database.hpp"
#include "http/page_cache.hpp"
#include "http/router.hpp"
#include "jobs/queue.hpp"
#include "modules/identity/module.hpp"
#include "modules/identity/policy.hpp"
#include "modules/transactions/module.hpp"

namespace souq::marketplace {

struct Options {
  std::string deal_process = "negotiation";  // for requests that name none
  std::chrono::hours default_request_ttl{30 * 24};
  std::chrono::hours max_request_ttl{90 * 24};
  std::chrono::hours max_offer_ttl{30 * 24};
  // Anonymous pages of the request list are kept this long (0: not at all).
  std::chrono::milliseconds list_cache_ttl{1000};
};

struct RequestFilter {
  std::optional<std::string> status;  // default: active (others: own requests or admins)
  std::optional<std::string> category, city, q, currency;
  std::vector<std::string> categories;  // any of (the seller feed)
  std::optional<int64_t> budget_min, budget_max;  // requests whose budget overlaps this range
  std::optional<double> lat, lng, radius_km;
  std::optional<std::string> buyer_id;           // only this buyer's requests
  std::optional<std::string> exclude_buyer_id;  // not this buyer's (a seller's feed)
  std::string sort = "newest";                   // newest | ending_soon
  std::optional<json> cursor;
  int limit = 20;
};

struct SeedOptions {
  int buyers = 2000, sellers = 500;
  int64_t requests = 100'000, offers = 500'000;
  uint64_t random_seed = 1;
};

// Title and description as the text filter matches them (lower-cased ASCII).
std::string lower_text(std::string text);

class Marketplace {
 public:
  Marketplace(db::Database& db, jobs::Queue& queue, jobs::Outbox& outbox, identity::Identity& identity,
              transactions::Transactions& transactions, Options options = {});

  // close_request and reject_other_offers, for processes' on_create.
  static void register_actions(transactions::Actions& actions);
  // Request and offer expiry.
  void register_jobs();
  // Reports may name requests and offers (their owners are who a decision acts on).
  // Returns the owner's user id, or nullopt when there is no such target.
  std::optional<std::string> owner_of(db::Tx& tx, const std::string& type, const std::string& id);

  // Requests.
  json create_request(const identity::Principal& who, const json& fields, const std::string& request_id);
  json request(db::Tx& tx, const std::string& id, const identity::Principal* viewer);
  // Owner only, while no offer exists; or an owner's cancel (any time while active).
  json update_request(const identity::Principal& who, const std::string& id, const json& changes,
                      const std::string& request_id);
  json cancel_request(const identity::Principal& who, const std::string& id, const std::string& reason,
                      const std::string& request_id);
  std::pair<json, json> requests(db::Tx& tx, RequestFilter filter, const identity::Principal* viewer);
  json seller_categories(db::Tx& tx, const std::string& seller_id);
  json set_seller_categories(const identity::Principal& who, const std::vector<std::string>& categories);

  // Offers.
  json create_offer(const identity::Principal& who, const json& fields, const std::string& request_id);
  json offer(db::Tx& tx, const std::string& id, const identity::Principal& who);
  std::pair<json, json> offers_on(db::Tx& tx, const std::string& request_id, const identity::Principal& who,
                                  const std::optional<std::string>& before, int limit);
  json withdraw_offer(const identity::Principal& who, const std::string& id, const std::string& request_id);
  // Accepts the offer and starts a deal on the request's process, in one
  // database transaction. Returns the deal.
  json accept_offer(const identity::Principal& who, const std::string& id, const std::string& request_id);

  // Deals: transactions of kind "deal", with their offer and request.
  json deal(db::Tx& tx, const std::string& id, const identity::Principal& who);

  // Admin KPIs per day: requests, offers, deals created, completed, cancelled
  // and the completion rate, for days from..to (YYYY-MM-DD).
  json stats(db::Tx& tx, const std::string& from_day, const std::string& to_day);

  // Fills the database with a marketplace of o.requests requests and about
  // o.offers offers (souq seed); progress(requests, offers) made so far, as it goes.
  void seed(const SeedOptions& o, const std::function<void(int64_t requests, int64_t offers)>& progress);

  const Options& options() const { return options_; }
  transactions::Transactions& transactions() { return transactions_; }
  api::PageCache& list_cache() { return list_cache_; }

 private:
  json request_json(const db::Row& r, const identity::Principal* viewer, std::map<std::string, json>& people);
  json offer_json(const db::Row& r, std::map<std::string, json>& people);
  void expire_request(const std::string& id);
  void expire_offer(const std::string& id);
  void schedule_request_expiry(db::Tx& tx, const std::string& id, const std::string& expires_at,
                               const std::string& request_id);
  // True when this seller has made an offer (of any status) on the request.
  static bool offered_on(db::Tx& tx, const std::string& request_id, const std::string& seller_id);
  // The request's title, for the events that tell people about it.
  static std::string title_of(db::Tx& tx, const std::string& request_id);
  // Requests changed in this transaction: cached list pages go at commit.
  void touched(db::Tx& tx) {
    tx.after_commit([this] { list_cache_.bump(); });
  }

  db::Database& db_;
  jobs::Queue& queue_;
  jobs::Outbox& outbox_;
  identity::Identity& identity_;
  transactions::Transactions& transactions_;
  Options options_;
  api::PageCache list_cache_;
};

// The rules of the marketplace's routes: requests.create, requests.feed,
// admin.stats.
void register_policies(identity::Policy& policy);

// /api/v1/requests, /api/v1/offers, /api/v1/deals, /api/v1/seller/categories,
// /api/v1/admin/stats.
void register_routes(api::Router& router, Marketplace& marketplace, identity::Identity& identity,
                     const identity::Policy& policy, BlockingPool& blocking);

}  // namespace souq::marketplace
