#include <algorithm>
#include <cmath>

#include "core/id.hpp"
#include "core/time.hpp"
#include "core/validation.hpp"
#include "http/paging.hpp"
#include "http/response.hpp"
#include "modules/ratings/module.hpp"

namespace souq::ratings {
namespace {

json rating_summary(int64_t count, int64_t total) {
  return {{"count", count},
          {"average", count == 0 ? json(nullptr) : json(std::round(double(total) * 100.0 / double(count)) / 100.0)}};
}

}  // namespace

Ratings::Ratings(db::Database& db, jobs::Outbox& outbox, identity::Identity& identity,
                 transactions::Transactions& transactions)
    : db_(db), outbox_(outbox), identity_(identity), transactions_(transactions) {}

void Ratings::register_actions(transactions::Actions& actions) {
  actions.add("enable_reviews",
              {"Opens ratings: each party may rate the other once, for 30 days.", {},
               [](transactions::ActionContext& ctx) {
                 auto t = now();
                 ctx.tx.exec("INSERT INTO rating_windows (transaction_id, buyer_id, seller_id, opened_at, closes_at)"
                             " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                             {ctx.txn.id, ctx.txn.buyer_id, ctx.txn.seller_id, format_time(t),
                              format_time(t + std::chrono::duration_cast<std::chrono::milliseconds>(kWindow))});
               }});
}

void Ratings::extend_profiles() {
  identity_.extend_profiles([](db::Tx& tx, const std::vector<std::string>& ids, std::map<std::string, json>& profiles) {
    db::Params params;
    std::string in = db::bind_list(params, ids);
    for (auto& [id, profile] : profiles)
      profile["rating"] = {{"as_seller", rating_summary(0, 0)}, {"as_buyer", rating_summary(0, 0)}};
    for (const auto& r : tx.query("SELECT user_id, role, rating_count, score_total FROM rating_summaries"
                                  " WHERE user_id IN (" + in + ")",
                                  params)) {
      auto it = profiles.find(r.text("user_id"));
      if (it != profiles.end())
        it->second["rating"]["as_" + r.text("role")] = rating_summary(r.integer("rating_count"), r.integer("score_total"));
    }
  });
}

json Ratings::rate(const identity::Principal& who, const std::string& transaction_id, int score,
                   const std::string& comment, const std::string& request_id) {
  try {
    return db_.write([&](db::Tx& tx) {
      auto txn = transactions_.load(tx, transaction_id);
      if (!txn || (who.user_id != txn->buyer_id && who.user_id != txn->seller_id))
        throw ApiError::not_found("No such transaction.");
      auto window = tx.query_one("SELECT closes_at FROM rating_windows WHERE transaction_id = $1", {transaction_id});
      auto stamp = now_text();
      if (!window || window->text("closes_at") <= stamp)
        throw ApiError::conflict("ratings_not_open",
                                 window ? "Ratings for this transaction have closed."
                                        : "Ratings open when the transaction completes.",
                                 {{"state", txn->state}});
      bool buyer = who.user_id == txn->buyer_id;
      std::string ratee = buyer ? txn->seller_id : txn->buyer_id, role = buyer ? "seller" : "buyer";
      // A second rating by the same rater meets the unique key (below).
      std::string id = new_id("rat");
      tx.exec("INSERT INTO ratings (id, transaction_id, rater_id, ratee_id, ratee_role, score, comment, created_at)"
              " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
              {id, transaction_id, who.user_id, ratee, role, score, db::null_if_empty(comment),
               stamp});
      tx.exec("INSERT INTO rating_summaries (user_id, role, rating_count, score_total) VALUES ($1, $2, 1, $3)"
              " ON CONFLICT (user_id, role) DO UPDATE SET rating_count = rating_summaries.rating_count + 1,"
              " score_total = rating_summaries.score_total + excluded.score_total",
              {ratee, role, score});
      outbox_.emit(tx, "rating.created",
                   {{"rating_id", id}, {"transaction_id", transaction_id}, {"rater_id", who.user_id},
                    {"ratee_id", ratee}, {"ratee_role", role}, {"score", score}},
                   transaction_id, request_id);
      auto people = identity_.summaries(tx, {ratee});
      return json{{"id", id},          {"transaction_id", transaction_id},
                  {"rater_id", who.user_id}, {"ratee", identity::summary_of(people, ratee)},
                  {"ratee_role", role}, {"score", score},
                  {"comment", comment.empty() ? json(nullptr) : json(comment)}, {"created_at", stamp}};
    });
  } catch (const db::ConstraintError& e) {
    // A rater's second rating, also when two race: the unique key keeps the first.
    if (e.kind() == db::ConstraintError::Kind::unique)
      throw ApiError::conflict("already_rated", "You have already rated this transaction.");
    throw;
  }
}

json Ratings::of_transaction(db::Tx& tx, const std::string& transaction_id, const identity::Principal& who) {
  auto txn = transactions_.load(tx, transaction_id);
  if (!txn || transactions_.roles_of(*txn, who).empty()) throw ApiError::not_found("No such transaction.");
  auto window = tx.query_one("SELECT opened_at, closes_at FROM rating_windows WHERE transaction_id = $1", {transaction_id});
  json items = json::array();
  for (const auto& r : tx.query("SELECT id, rater_id, ratee_id, ratee_role, score, comment, created_at FROM ratings"
                                " WHERE transaction_id = $1 ORDER BY id",
                                {transaction_id}))
    items.push_back({{"id", r.text("id")},
                     {"rater_id", r.text("rater_id")},
                     {"ratee_id", r.text("ratee_id")},
                     {"ratee_role", r.text("ratee_role")},
                     {"score", r.integer("score")},
                     {"comment", r.nullable_text("comment")},
                     {"created_at", r.text("created_at")}});
  bool rated = std::any_of(items.begin(), items.end(), [&](const json& i) { return i["rater_id"] == who.user_id; });
  bool open = window && window->text("closes_at") > now_text();
  bool party = who.user_id == txn->buyer_id || who.user_id == txn->seller_id;
  return {{"transaction_id", transaction_id},
          {"open", open},
          {"opened_at", window ? json(window->text("opened_at")) : json(nullptr)},
          {"closes_at", window ? json(window->text("closes_at")) : json(nullptr)},
          {"can_rate", open && party && !rated},
          {"ratings", items}};
}

std::pair<json, json> Ratings::received(db::Tx& tx, const std::string& user_id, const std::string& role,
                                        const std::optional<std::string>& before, int limit) {
  if (!identity_.is_active(tx, user_id)) throw ApiError::not_found("No such user.");
  db::Params params = {user_id, role};
  std::string sql = "SELECT id, rater_id, score, comment, created_at FROM ratings WHERE ratee_id = $1 AND ratee_role = $2";
  if (before) {
    params.emplace_back(*before);
    sql += " AND id < $3";
  }
  params.emplace_back(int64_t(limit + 1));
  auto rows = tx.query(sql + " ORDER BY id DESC LIMIT $" + std::to_string(params.size()), params);
  std::vector<std::string> raters;
  for (const auto& r : rows) raters.push_back(r.text("rater_id"));
  auto people = identity_.summaries(tx, raters);
  return db::page_of(rows, limit, [&](const db::Row& r) {
    std::string rater = r.text("rater_id");
    json by = identity::summary_of(people, rater);
    by.erase("rating");
    return json{{"id", r.text("id")},
                {"score", r.integer("score")},
                {"comment", r.nullable_text("comment")},
                {"rater", by},
                {"created_at", r.text("created_at")}};
  });
}

void register_routes(api::Router& router, Ratings& ratings, identity::Identity& identity, BlockingPool& blocking) {
  router.post("/api/v1/transactions/{id:id}/ratings", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    Validator v(req.json_object());
    v.only({"score", "comment"});
    auto score = v.integer("score", 1, 5);
    auto comment = v.text("comment", 0, 1000, false);
    v.done();
    co_return api::ok(req, co_await blocking.run([&] {
      return ratings.rate(who, req.param("id"), int(*score), comment.value_or(""), req.request_id);
    }), http::status::created);
  });

  router.get("/api/v1/transactions/{id:id}/ratings", [&](api::Request& req) -> awaitable<api::Response> {
    const std::string& id = req.param("id");
    auto read = [&ratings, &id](db::Tx& tx, const identity::Principal& who) { return ratings.of_transaction(tx, id, who); };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  // Public: what others said of this user as a seller (default) or buyer.
  router.get("/api/v1/users/{id:id}/ratings", [&](api::Request& req) -> awaitable<api::Response> {
    std::string id = req.param("id");
    std::string role = req.query_param("role").value_or("seller");
    if (role != "seller" && role != "buyer") throw ApiError::validation({{"role", "must be seller or buyer"}});
    int limit = api::page_limit(req);
    auto before = api::page_cursor(req);
    auto read = [&ratings, &id, &role, &before, limit](db::Tx& tx, const identity::Principal*) {
      return ratings.received(tx, id, role, before, limit);
    };
    auto [items, next] = co_await identity::viewer_read(req, identity, blocking, read);
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });
}

}  // namespace souq::ratings
