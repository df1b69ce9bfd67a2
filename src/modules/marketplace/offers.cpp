// Offers: made by approved sellers, withdrawn, expired, accepted into deals.
#include "core/id.hpp"
#include "core/time.hpp"
#include "modules/marketplace/module.hpp"

namespace souq::marketplace {
namespace {

constexpr const char* kOfferColumns =
    "id, request_id, seller_id, price, currency, message, delivery_days, valid_until, status, status_reason, deal_id,"
    " created_at, updated_at";

ApiError offer_not_pending(const std::string& status) {
  return ApiError::conflict("offer_not_pending", "This offer is " + status + ", not pending.", {{"status", status}});
}

ApiError request_not_active(const std::string& status) {
  return ApiError::conflict("request_not_active", "This request is no longer open.", {{"status", status}});
}

}  // namespace

json Marketplace::offer_json(const db::Row& r, std::map<std::string, json>& people) {
  std::string seller = r.text("seller_id");
  std::string status = r.text("status");
  if (status == "pending" && r.text("valid_until") <= now_text()) status = "expired";  // its job has not run yet
  return {{"id", r.text("id")},
          {"request_id", r.text("request_id")},
          {"status", status},
          {"status_reason", r.nullable_text("status_reason")},
          {"price", r.integer("price")},
          {"currency", r.text("currency")},
          {"message", r.text("message")},
          {"delivery_days", r.integer("delivery_days")},
          {"valid_until", r.text("valid_until")},
          {"deal_id", r.nullable_text("deal_id")},
          {"seller", identity::summary_of(people, seller)},
          {"created_at", r.text("created_at")},
          {"updated_at", r.text("updated_at")}};
}

json Marketplace::create_offer(const identity::Principal& who, const json& f, const std::string& request_id) {
  if (!who.has_role("seller"))
    throw ApiError(403, "seller_not_approved", "Only approved sellers make offers. Apply at /api/v1/seller-profiles.");
  std::string req_id = f["request_id"];
  int64_t price = f["price"];
  std::string currency = f["currency"];
  return db_.write([&](db::Tx& tx) {
    auto t = now();
    auto stamp = format_time(t);
    auto req = tx.query_one("SELECT buyer_id, status, budget_min, budget_max, currency, expires_at, title FROM requests"
                            " WHERE id = $1" + std::string(tx.for_update()),
                            {req_id});
    if (!req) throw ApiError::not_found("No such request.");
    if (req->text("buyer_id") == who.user_id)
      throw ApiError(403, "own_request", "You cannot make an offer on your own request.");
    if (req->text("status") != "active" || req->text("expires_at") <= stamp)
      throw request_not_active(req->text("status") == "active" ? "expired" : req->text("status"));
    if (currency != req->text("currency"))
      throw ApiError::unprocessable("currency_mismatch", "Offers on this request are in " + req->text("currency") + ".",
                                    {{"currency", req->text("currency")}});
    if (price < req->integer("budget_min") || price > req->integer("budget_max"))
      throw ApiError::unprocessable("offer_price_out_of_range", "The price must be within the request's budget.",
                                    {{"budget_min", req->integer("budget_min")},
                                     {"budget_max", req->integer("budget_max")},
                                     {"currency", req->text("currency")}});
    std::string longest = format_time(t + std::chrono::duration_cast<std::chrono::milliseconds>(options_.max_offer_ttl));
    std::string valid_until = std::min(req->text("expires_at"), longest);  // by default, as long as it may
    if (f.contains("valid_until")) {
      valid_until = f["valid_until"].get<std::string>();
      if (valid_until <= stamp || valid_until > longest)
        throw ApiError::validation({{"valid_until", "must be after now and within " +
                                                        std::to_string(options_.max_offer_ttl.count() / 24) + " days"}});
      valid_until = std::min(valid_until, req->text("expires_at"));  // an offer never outlives its request
    }
    if (tx.query_one("SELECT id FROM offers WHERE request_id = $1 AND seller_id = $2 AND status = 'pending'",
                     {req_id, who.user_id}))
      throw ApiError::conflict("duplicate_offer", "You already have a pending offer on this request; withdraw it first.");
    std::string id = new_id("ofr");
    tx.exec("INSERT INTO offers (id, request_id, seller_id, price, currency, message, delivery_days, valid_until, status,"
            " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9)",
            {id, req_id, who.user_id, price, currency, f.value("message", ""), f["delivery_days"].get<int64_t>(),
             valid_until, stamp});
    if (tx.exec("UPDATE requests SET offer_count = offer_count + 1, updated_at = $2 WHERE id = $1 AND status = 'active'",
                {req_id, stamp}) == 0)
      throw request_not_active("closed");
    touched(tx);
    // An offer that lasts as long as its request ends with it (request_expired);
    // only one that ends sooner needs a job of its own.
    if (valid_until < req->text("expires_at")) {
      jobs::EnqueueOptions o;
      o.run_at = *parse_time(valid_until);
      o.unique_key = "offer-expiry:" + id;
      o.request_id = request_id;
      queue_.enqueue(tx, "marketplace.offer_expiry", {{"offer_id", id}}, o);
    }
    outbox_.emit(tx, "offer.created",
                 {{"offer_id", id}, {"request_id", req_id}, {"buyer_id", req->text("buyer_id")}, {"seller_id", who.user_id},
                  {"price", price}, {"currency", currency}, {"request_title", req->text("title")}},
                 id, request_id);
    return offer(tx, id, who);
  });
}

json Marketplace::offer(db::Tx& tx, const std::string& id, const identity::Principal& who) {
  auto row = tx.query_one(std::string("SELECT ") + kOfferColumns + " FROM offers WHERE id = $1", {id});
  // Seen by its seller, the request's buyer and admins.
  if (!row || (row->text("seller_id") != who.user_id && !who.has_role("admin") &&
               tx.query_one("SELECT buyer_id FROM requests WHERE id = $1", {row->text("request_id")})
                       ->text("buyer_id") != who.user_id))
    throw ApiError::not_found("No such offer.");
  auto people = identity_.summaries(tx, {row->text("seller_id")});
  return offer_json(*row, people);
}

std::pair<json, json> Marketplace::offers_on(db::Tx& tx, const std::string& request_id, const identity::Principal& who,
                                             const std::optional<std::string>& before, int limit) {
  auto req = tx.query_one("SELECT buyer_id, status FROM requests WHERE id = $1", {request_id});
  if (!req) throw ApiError::not_found("No such request.");
  bool all = req->text("buyer_id") == who.user_id || who.has_role("admin");
  // A request no longer open is seen only by its buyer, admins and the sellers who offered.
  if (!all && req->text("status") != "active" && !offered_on(tx, request_id, who.user_id))
    throw ApiError::not_found("No such request.");
  std::string sql = std::string("SELECT ") + kOfferColumns + " FROM offers WHERE request_id = $1";
  db::Params params = {request_id};
  // The buyer sees every offer; a seller only their own.
  if (!all) {
    params.emplace_back(who.user_id);
    sql += " AND seller_id = $2";
  }
  if (before) {
    params.emplace_back(*before);
    sql += " AND id < $" + std::to_string(params.size());
  }
  params.emplace_back(int64_t(limit + 1));
  auto rows = tx.query(sql + " ORDER BY id DESC LIMIT $" + std::to_string(params.size()), params);
  std::vector<std::string> sellers;
  for (const auto& r : rows) sellers.push_back(r.text("seller_id"));
  auto people = identity_.summaries(tx, sellers);
  return db::page_of(rows, limit, [&](const db::Row& r) { return offer_json(r, people); });
}

std::string Marketplace::title_of(db::Tx& tx, const std::string& request_id) {
  auto row = tx.query_one("SELECT title FROM requests WHERE id = $1", {request_id});
  return row ? row->text("title") : std::string();
}

bool Marketplace::offered_on(db::Tx& tx, const std::string& request_id, const std::string& seller_id) {
  return bool(tx.query_one("SELECT 1 AS x FROM offers WHERE request_id = $1 AND seller_id = $2", {request_id, seller_id}));
}

json Marketplace::withdraw_offer(const identity::Principal& who, const std::string& id, const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto row = tx.query_one("SELECT o.seller_id, o.status, o.request_id, r.buyer_id, r.title FROM offers o"
                            " JOIN requests r ON r.id = o.request_id WHERE o.id = $1",
                            {id});
    if (!row || (row->text("seller_id") != who.user_id && row->text("buyer_id") != who.user_id))
      throw ApiError::not_found("No such offer.");
    if (row->text("seller_id") != who.user_id) throw ApiError(403, "forbidden", "Only its seller withdraws an offer.");
    std::string req_id = row->text("request_id");
    // The request's row first, as accept does, so the two take locks in one order.
    tx.query_one("SELECT id FROM requests WHERE id = $1" + std::string(tx.for_update()), {req_id});
    auto stamp = now_text();
    if (tx.exec("UPDATE offers SET status = 'withdrawn', updated_at = $2 WHERE id = $1 AND status = 'pending'",
                {id, stamp}) == 0) {
      auto now_status = tx.query_one("SELECT status FROM offers WHERE id = $1", {id})->text("status");
      throw offer_not_pending(now_status);
    }
    tx.exec("UPDATE requests SET offer_count = offer_count - 1, updated_at = $2 WHERE id = $1", {req_id, stamp});
    touched(tx);
    outbox_.emit(tx, "offer.withdrawn",
                 {{"offer_id", id}, {"request_id", req_id}, {"buyer_id", row->text("buyer_id")}, {"seller_id", who.user_id},
                  {"request_title", row->text("title")}},
                 id, request_id);
    return offer(tx, id, who);
  });
}

json Marketplace::accept_offer(const identity::Principal& who, const std::string& id, const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto head = tx.query_one("SELECT request_id FROM offers WHERE id = $1", {id});
    if (!head) throw ApiError::not_found("No such offer.");
    // Every writer on a request locks its row first: two accepts on one
    // request queue here, and the second finds it closed.
    auto req = tx.query_one("SELECT buyer_id, status, expires_at, process, title FROM requests WHERE id = $1" +
                                std::string(tx.for_update()),
                            {head->text("request_id")});
    auto o = tx.query_one(std::string("SELECT ") + kOfferColumns + " FROM offers WHERE id = $1", {id});
    bool owner = req->text("buyer_id") == who.user_id, admin = who.has_role("admin");
    if (!owner && !admin) {
      if (o->text("seller_id") == who.user_id)
        throw ApiError(403, "forbidden", "Only the buyer who posted the request accepts an offer.");
      throw ApiError::not_found("No such offer.");
    }
    auto stamp = now_text();
    if (o->text("status") != "pending") throw offer_not_pending(o->text("status"));
    if (o->text("valid_until") <= stamp) throw offer_not_pending("expired");
    if (req->text("status") != "active" || req->text("expires_at") <= stamp)
      throw request_not_active(req->text("status") == "active" ? "expired" : req->text("status"));
    if (!identity_.is_active(tx, o->text("seller_id")))
      throw ApiError::conflict("seller_unavailable", "This seller's account is suspended; their offer cannot be accepted.");
    if (tx.exec("UPDATE offers SET status = 'accepted', updated_at = $2 WHERE id = $1 AND status = 'pending'",
                {id, stamp}) == 0)
      throw offer_not_pending("changed");
    transactions::CreateSpec spec;
    spec.kind = "deal";
    spec.process = req->text("process");
    spec.buyer_id = req->text("buyer_id");
    spec.seller_id = o->text("seller_id");
    spec.subject_type = "offer";
    spec.subject_id = id;
    spec.amount = o->integer("price");
    spec.currency = o->text("currency");
    spec.title = req->text("title");
    spec.actor = {owner ? "buyer" : "operator", who.user_id};
    spec.request_id = request_id;
    auto deal = transactions_.create(tx, spec);  // its actions close the request
    touched(tx);
    tx.exec("UPDATE offers SET deal_id = $2 WHERE id = $1", {id, deal.id});
    outbox_.emit(tx, "offer.accepted",
                 {{"offer_id", id}, {"request_id", head->text("request_id")}, {"buyer_id", spec.buyer_id},
                  {"seller_id", spec.seller_id}, {"deal_id", deal.id}, {"price", spec.amount}, {"currency", spec.currency},
                  {"request_title", spec.title}},
                 id, request_id);
    return this->deal(tx, deal.id, who);
  });
}

void Marketplace::expire_offer(const std::string& id) {
  db_.write([&](db::Tx& tx) {
    auto stamp = now_text();
    auto row = tx.query_one("UPDATE offers SET status = 'expired', status_reason = 'offer_expired', updated_at = $2"
                            " WHERE id = $1 AND status = 'pending' AND valid_until <= $2 RETURNING request_id, seller_id, price, currency",
                            {id, stamp});
    if (!row) return;
    outbox_.emit(tx, "offer.expired",
                 {{"offer_id", id}, {"request_id", row->text("request_id")}, {"seller_id", row->text("seller_id")},
                  {"price", row->integer("price")}, {"currency", row->text("currency")},
                  {"request_title", title_of(tx, row->text("request_id"))}},
                 id);
  });
}

void Marketplace::register_actions(transactions::Actions& actions) {
  auto offer_subject = [](transactions::ActionContext& ctx, const char* action) {
    if (ctx.txn.subject_type != "offer")
      throw std::logic_error(std::string(action) + " runs on transactions whose subject is an offer, not " +
                             (ctx.txn.subject_type.empty() ? "none" : ctx.txn.subject_type));
    return ctx.tx.query_one("SELECT o.request_id, r.buyer_id FROM offers o JOIN requests r ON r.id = o.request_id"
                            " WHERE o.id = $1",
                            {ctx.txn.subject_id});
  };
  actions.add("close_request",
              {"Closes the request the accepted offer answers (409 if it is no longer open).", {},
               [offer_subject](transactions::ActionContext& ctx) {
                 auto o = offer_subject(ctx, "close_request");
                 auto stamp = now_text();
                 if (ctx.tx.exec("UPDATE requests SET status = 'closed', accepted_offer_id = $2, closed_at = $3,"
                                 " updated_at = $3 WHERE id = $1 AND status = 'active'",
                                 {o->text("request_id"), ctx.txn.subject_id, stamp}) == 0)
                   throw request_not_active("closed");
                 ctx.outbox.emit(ctx.tx, "request.closed",
                                 {{"request_id", o->text("request_id")}, {"buyer_id", o->text("buyer_id")},
                                  {"offer_id", ctx.txn.subject_id}, {"deal_id", ctx.txn.id}},
                                 o->text("request_id"), ctx.request_id);
               }});
  actions.add("reject_other_offers",
              {"Rejects every other pending offer on the accepted offer's request.", {},
               [offer_subject](transactions::ActionContext& ctx) {
                 auto o = offer_subject(ctx, "reject_other_offers");
                 for (const auto& r : ctx.tx.query("UPDATE offers SET status = 'rejected', status_reason ="
                                                   " 'another_offer_accepted', updated_at = $3 WHERE request_id = $1"
                                                   " AND status = 'pending' AND id <> $2 RETURNING id, seller_id",
                                                   {o->text("request_id"), ctx.txn.subject_id, now_text()}))
                   ctx.outbox.emit(ctx.tx, "offer.rejected",
                                   {{"offer_id", r.text("id")}, {"request_id", o->text("request_id")},
                                    {"seller_id", r.text("seller_id")}, {"buyer_id", o->text("buyer_id")},
                                    {"reason", "another_offer_accepted"}, {"deal_id", ctx.txn.id}, {"request_title", ctx.txn.title}},
                                   r.text("id"), ctx.request_id);
               }});
}

std::optional<std::string> Marketplace::owner_of(db::Tx& tx, const std::string& type, const std::string& id) {
  std::optional<db::Row> row;
  if (type == "request") row = tx.query_one("SELECT buyer_id AS owner FROM requests WHERE id = $1", {id});
  else if (type == "offer") row = tx.query_one("SELECT seller_id AS owner FROM offers WHERE id = $1", {id});
  if (!row) return std::nullopt;
  return row->text("owner");
}

json Marketplace::deal(db::Tx& tx, const std::string& id, const identity::Principal& who) {
  auto txn = transactions_.load(tx, id);
  if (!txn || txn->kind != "deal" || transactions_.roles_of(*txn, who).empty()) throw ApiError::not_found("No such deal.");
  json out = transactions_.view(tx, *txn, who);
  auto o = tx.query_one(std::string("SELECT ") + kOfferColumns + " FROM offers WHERE id = $1", {txn->subject_id});
  std::map<std::string, json> people;
  out["offer"] = o ? offer_json(*o, people) : json(nullptr);
  if (o) out["offer"]["seller"] = out["seller"];
  auto r = o ? tx.query_one("SELECT id, title, category, city, quantity FROM requests WHERE id = $1",
                            {o->text("request_id")})
             : std::nullopt;
  out["request"] = r ? json{{"id", r->text("id")}, {"title", r->text("title")}, {"category", r->text("category")},
                            {"city", r->text("city")}, {"quantity", r->integer("quantity")}}
                     : json(nullptr);
  return out;
}

json Marketplace::stats(db::Tx& tx, const std::string& from_day, const std::string& to_day) {
  std::string from = from_day + "T00:00:00.000Z", to = to_day + "T23:59:59.999Z";
  json days = transactions_.daily_stats(tx, "deal", from, to);
  for (const char* table : {"requests", "offers"})
    for (const auto& r : tx.query(std::string("SELECT substr(created_at, 1, 10) AS day, COUNT(*) AS n FROM ") + table +
                                      " WHERE created_at >= $1 AND created_at <= $2 GROUP BY substr(created_at, 1, 10)",
                                  {from, to}))
      days[r.text("day")][table] = r.integer("n");
  json out = json::array();
  auto day = *parse_time(from);
  auto last = *parse_time(to);
  for (; day <= last; day += std::chrono::hours(24)) {
    std::string key = format_time(day).substr(0, 10);
    json d = days.contains(key) ? days[key] : json::object();
    int64_t completed = d.value("completed", int64_t(0)), cancelled = d.value("cancelled", int64_t(0));
    out.push_back({{"day", key},
                   {"requests", d.value("requests", int64_t(0))},
                   {"offers", d.value("offers", int64_t(0))},
                   {"deals", d.value("created", int64_t(0))},
                   {"deals_completed", completed},
                   {"deals_cancelled", cancelled},
                   {"completion_rate", completed + cancelled == 0
                                           ? json(nullptr)
                                           : json(double(completed) / double(completed + cancelled))}});
  }
  return out;
}

}  // namespace souq::marketplace
