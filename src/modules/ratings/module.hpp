// The ratings module: after a transaction completes, each party rates the
// other once (1 to 5 stars, an optional comment). Per-user averages are kept
// exact in the same database transaction and shown wherever a profile is
// embedded (offers, deals, seller profiles).
#pragma once
#include <chrono>
#include <string>

#include "core/blocking.hpp"
#include "db/database.hpp"
#include "http/router.hpp"
#include "jobs/queue.hpp"
#include "modules/identity/module.hpp"
#include "modules/transactions/module.hpp"

namespace souq::ratings {

class Ratings {
 public:
  // Ratings stay open this long after the process opens them.
  static constexpr std::chrono::hours kWindow{30 * 24};

  Ratings(db::Database& db, jobs::Outbox& outbox, identity::Identity& identity,
          transactions::Transactions& transactions);
  // enable_reviews, for processes.
  static void register_actions(transactions::Actions& actions);
  // Adds {rating: {as_seller: {average, count}, as_buyer: {…}}} to profiles.
  void extend_profiles();

  // 404 unless `who` is a party; 409 `ratings_not_open` before the process
  // opened them (or after they closed), 409 `already_rated`.
  json rate(const identity::Principal& who, const std::string& transaction_id, int score, const std::string& comment,
            const std::string& request_id);
  json of_transaction(db::Tx& tx, const std::string& transaction_id, const identity::Principal& who);
  std::pair<json, json> received(db::Tx& tx, const std::string& user_id, const std::string& role,
                                 const std::optional<std::string>& before, int limit);

 private:
  db::Database& db_;
  jobs::Outbox& outbox_;
  identity::Identity& identity_;
  transactions::Transactions& transactions_;
};

// POST/GET /api/v1/transactions/{id}/ratings, GET /api/v1/users/{id}/ratings.
void register_routes(api::Router& router, Ratings& ratings, identity::Identity& identity, BlockingPool& blocking);

}  // namespace souq::ratings
