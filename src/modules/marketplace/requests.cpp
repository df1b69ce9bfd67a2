// Buy requests: create, read, edit while no offer exists, cancel, expire, list.
#include <algorithm>
#include <cmath>

#include "core/id.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "http/paging.hpp"
#include "modules/audit/module.hpp"
#include "modules/marketplace/module.hpp"

namespace souq::marketplace {
namespace {

constexpr const char* kRequestColumns =
    "id, buyer_id, title, description, category, quantity, budget_min, budget_max, currency, city, lat, lng, images,"
    " process, status, offer_count, accepted_offer_id, cancel_reason, expires_at, created_at, updated_at, closed_at";

// What the text filter matches: the title and description, lower-cased
// (ASCII; other scripts have no case to fold here).
std::string search_text(const std::string& title, const std::string& description) {
  return lower_text(title + "\n" + description);
}

// LIKE pattern for "contains", with the pattern characters escaped.
std::string contains_pattern(const std::string& q) {
  std::string out = "%";
  for (char c : lower_text(q)) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out + "%";
}

// Other people see a buyer's point only to about a kilometre.
double coarse(double degrees) { return std::round(degrees * 100.0) / 100.0; }

}  // namespace

std::string lower_text(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

Marketplace::Marketplace(db::Database& db, jobs::Queue& queue, jobs::Outbox& outbox, identity::Identity& identity,
                         transactions::Transactions& transactions, Options options)
    : db_(db), queue_(queue), outbox_(outbox), identity_(identity), transactions_(transactions),
      options_(std::move(options)), list_cache_(options_.list_cache_ttl, 2000) {}

void Marketplace::register_jobs() {
  queue_.handle("marketplace.request_expiry",
                [this](const jobs::Job& job) { expire_request(job.payload.at("request_id")); });
  queue_.handle("marketplace.offer_expiry", [this](const jobs::Job& job) { expire_offer(job.payload.at("offer_id")); });
}

json Marketplace::request_json(const db::Row& r, const identity::Principal* viewer,
                               std::map<std::string, json>& people) {
  std::string buyer = r.text("buyer_id");
  bool own = viewer && (viewer->user_id == buyer || viewer->has_role("admin"));
  std::string status = r.text("status");
  if (status == "active" && r.text("expires_at") <= now_text()) status = "expired";  // its job has not run yet
  json location = nullptr;
  if (!r.is_null("lat"))
    location = own ? json{{"lat", r.real("lat")}, {"lng", r.real("lng")}, {"precise", true}}
                   : json{{"lat", coarse(r.real("lat"))}, {"lng", coarse(r.real("lng"))}, {"precise", false}};
  json out = {{"id", r.text("id")},
              {"status", status},
              {"title", r.text("title")},
              {"description", r.text("description")},
              {"category", r.text("category")},
              {"quantity", r.integer("quantity")},
              {"budget_min", r.integer("budget_min")},
              {"budget_max", r.integer("budget_max")},
              {"currency", r.text("currency")},
              {"city", r.text("city")},
              {"location", location},
              {"images", r.json("images")},
              {"process", r.text("process")},
              {"offer_count", r.integer("offer_count")},
              {"accepted_offer_id", r.nullable_text("accepted_offer_id")},
              {"cancel_reason", r.nullable_text("cancel_reason")},
              {"buyer", identity::summary_of(people, buyer)},
              {"expires_at", r.text("expires_at")},
              {"created_at", r.text("created_at")},
              {"updated_at", r.text("updated_at")},
              {"closed_at", r.nullable_text("closed_at")}};
  return out;
}

void Marketplace::schedule_request_expiry(db::Tx& tx, const std::string& id, const std::string& expires_at,
                                          const std::string& request_id) {
  jobs::EnqueueOptions o;
  o.run_at = *parse_time(expires_at);
  o.unique_key = "request-expiry:" + id + ":" + expires_at;
  o.request_id = request_id;
  queue_.enqueue(tx, "marketplace.request_expiry", {{"request_id", id}}, o);
}

json Marketplace::create_request(const identity::Principal& who, const json& f, const std::string& request_id) {
  auto t = now();
  std::string expires_at = f.contains("expires_at")
                               ? f["expires_at"].get<std::string>()
                               : format_time(t + std::chrono::duration_cast<std::chrono::milliseconds>(
                                                     options_.default_request_ttl));
  std::string process = f.value("process", options_.deal_process);
  json fields = {{"expires_at", "must be after now and within " +
                                    std::to_string(options_.max_request_ttl.count() / 24) + " days"}};
  if (expires_at <= format_time(t) ||
      expires_at > format_time(t + std::chrono::duration_cast<std::chrono::milliseconds>(options_.max_request_ttl)))
    throw ApiError::validation(fields);
  if (f["budget_min"].get<int64_t>() > f["budget_max"].get<int64_t>())
    throw ApiError::unprocessable("budget_range_invalid", "budget_min must not be above budget_max.");
  if (!transactions_.processes().latest(process))
    throw ApiError::unprocessable("unknown_process", "There is no process named \"" + process + "\".");
  std::string id = new_id("req");
  return db_.write([&](db::Tx& tx) {
    auto stamp = now_text();
    tx.exec("INSERT INTO requests (id, buyer_id, title, description, category, quantity, budget_min, budget_max,"
            " currency, city, lat, lng, images, process, status, offer_count, search_text, expires_at, created_at,"
            " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'active', 0, $15, $16,"
            " $17, $17)",
            {id, who.user_id, f["title"].get<std::string>(), f.value("description", ""), f["category"].get<std::string>(),
             f["quantity"].get<int64_t>(), f["budget_min"].get<int64_t>(), f["budget_max"].get<int64_t>(),
             f["currency"].get<std::string>(), f["city"].get<std::string>(),
             f.contains("lat") ? db::Value(f["lat"].get<double>()) : db::Value(),
             f.contains("lng") ? db::Value(f["lng"].get<double>()) : db::Value(), f.value("images", json::array()),
             process, search_text(f["title"], f.value("description", "")), expires_at, stamp});
    schedule_request_expiry(tx, id, expires_at, request_id);
    touched(tx);
    outbox_.emit(tx, "request.created",
                 {{"request_id", id},
                  {"buyer_id", who.user_id},
                  {"title", f["title"]},
                  {"category", f["category"]},
                  {"city", f["city"]},
                  {"budget_min", f["budget_min"]},
                  {"budget_max", f["budget_max"]},
                  {"currency", f["currency"]},
                  {"expires_at", expires_at}},
                 id, request_id);
    return request(tx, id, &who);
  });
}

json Marketplace::request(db::Tx& tx, const std::string& id, const identity::Principal* viewer) {
  auto row = tx.query_one(std::string("SELECT ") + kRequestColumns + " FROM requests WHERE id = $1", {id});
  if (!row) throw ApiError::not_found("No such request.");
  bool open = row->text("status") == "active" && row->text("expires_at") > now_text();
  bool own = viewer && (viewer->user_id == row->text("buyer_id") || viewer->has_role("admin"));
  // A request that is no longer open is seen by its buyer, admins, and the
  // sellers who offered on it.
  if (!open && !own && !(viewer && offered_on(tx, id, viewer->user_id)))
    throw ApiError::not_found("No such request.");
  auto people = identity_.summaries(tx, {row->text("buyer_id")});
  return request_json(*row, viewer, people);
}

json Marketplace::update_request(const identity::Principal& who, const std::string& id, const json& changes,
                                 const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto row = tx.query_one(std::string("SELECT ") + kRequestColumns + ", search_text FROM requests WHERE id = $1" +
                                std::string(tx.for_update()),
                            {id});
    if (!row || (row->text("buyer_id") != who.user_id && row->text("status") != "active"))
      throw ApiError::not_found("No such request.");
    if (row->text("buyer_id") != who.user_id) throw ApiError(403, "forbidden", "Only the buyer edits a request.");
    if (row->text("status") != "active" || row->text("expires_at") <= now_text())
      throw ApiError::conflict("request_not_active", "This request is no longer open.", {{"status", row->text("status")}});
    if (row->integer("offer_count") > 0)
      throw ApiError::conflict("request_has_offers", "A request with offers cannot be changed; cancel it and post anew.",
                               {{"offer_count", row->integer("offer_count")}});
    json merged = {{"title", row->text("title")},         {"description", row->text("description")},
                   {"category", row->text("category")},   {"quantity", row->integer("quantity")},
                   {"budget_min", row->integer("budget_min")}, {"budget_max", row->integer("budget_max")},
                   {"currency", row->text("currency")},   {"city", row->text("city")},
                   {"images", row->json("images")},       {"expires_at", row->text("expires_at")}};
    merged["lat"] = row->is_null("lat") ? json(nullptr) : json(row->real("lat"));
    merged["lng"] = row->is_null("lng") ? json(nullptr) : json(row->real("lng"));
    for (const auto& item : changes.items()) merged[item.key()] = item.value();
    if (merged["budget_min"].get<int64_t>() > merged["budget_max"].get<int64_t>())
      throw ApiError::unprocessable("budget_range_invalid", "budget_min must not be above budget_max.");
    auto t = now();
    std::string expires_at = merged["expires_at"];
    if (changes.contains("expires_at") &&
        (expires_at <= format_time(t) ||
         expires_at > format_time(*parse_time(row->text("created_at")) +
                                  std::chrono::duration_cast<std::chrono::milliseconds>(options_.max_request_ttl))))
      throw ApiError::validation({{"expires_at", "must be after now and within " +
                                                     std::to_string(options_.max_request_ttl.count() / 24) +
                                                     " days of the request's creation"}});
    // Guarded: an offer that arrived since the read leaves the request as it is.
    if (tx.exec("UPDATE requests SET title = $2, description = $3, category = $4, quantity = $5, budget_min = $6,"
                " budget_max = $7, currency = $8, city = $9, lat = $10, lng = $11, images = $12, expires_at = $13,"
                " search_text = $14, updated_at = $15 WHERE id = $1 AND status = 'active' AND offer_count = 0",
                {id, merged["title"].get<std::string>(), merged["description"].get<std::string>(),
                 merged["category"].get<std::string>(), merged["quantity"].get<int64_t>(),
                 merged["budget_min"].get<int64_t>(), merged["budget_max"].get<int64_t>(),
                 merged["currency"].get<std::string>(), merged["city"].get<std::string>(),
                 merged["lat"].is_null() ? db::Value() : db::Value(merged["lat"].get<double>()),
                 merged["lng"].is_null() ? db::Value() : db::Value(merged["lng"].get<double>()), merged["images"],
                 expires_at, search_text(merged["title"], merged["description"]), format_time(t)}) == 0)
      throw ApiError::conflict("request_has_offers", "An offer arrived while the request was being changed.");
    if (expires_at != row->text("expires_at")) schedule_request_expiry(tx, id, expires_at, request_id);
    touched(tx);
    outbox_.emit(tx, "request.updated", {{"request_id", id}, {"buyer_id", who.user_id}, {"changed", changes}}, id,
                 request_id);
    return request(tx, id, &who);
  });
}

json Marketplace::cancel_request(const identity::Principal& who, const std::string& id, const std::string& reason,
                                 const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto row = tx.query_one("SELECT buyer_id, status, expires_at, title FROM requests WHERE id = $1" +
                                std::string(tx.for_update()),
                            {id});
    bool admin = who.has_role("admin");
    if (!row || (row->text("buyer_id") != who.user_id && !admin && row->text("status") != "active"))
      throw ApiError::not_found("No such request.");
    bool own = row->text("buyer_id") == who.user_id;
    if (!own && !admin) throw ApiError(403, "forbidden", "Only the buyer cancels a request.");
    if (!own && reason.empty()) throw ApiError::validation({{"reason", "is required when an admin cancels a request"}});
    auto stamp = now_text();
    if (tx.exec("UPDATE requests SET status = 'cancelled', cancel_reason = $2, closed_at = $3, updated_at = $3"
                " WHERE id = $1 AND status = 'active'",
                {id, db::null_if_empty(reason), stamp}) == 0)
      throw ApiError::conflict("request_not_active", "This request is no longer open.", {{"status", row->text("status")}});
    touched(tx);
    for (const auto& o : tx.query("UPDATE offers SET status = 'rejected', status_reason = 'request_cancelled',"
                                  " updated_at = $2 WHERE request_id = $1 AND status = 'pending' RETURNING id, seller_id",
                                  {id, stamp}))
      outbox_.emit(tx, "offer.rejected",
                   {{"offer_id", o.text("id")}, {"request_id", id}, {"seller_id", o.text("seller_id")},
                    {"buyer_id", row->text("buyer_id")}, {"reason", "request_cancelled"}, {"request_title", row->text("title")}},
                   o.text("id"), request_id);
    outbox_.emit(tx, "request.cancelled",
                 {{"request_id", id}, {"buyer_id", row->text("buyer_id")}, {"by", own ? "buyer" : "operator"},
                  {"request_title", row->text("title")}},
                 id, request_id);
    if (!own)
      audit::record(tx, {who.user_id, "request.cancel", "request", id, reason, json::object(), request_id});
    return request(tx, id, &who);
  });
}

void Marketplace::expire_request(const std::string& id) {
  db_.write([&](db::Tx& tx) {
    auto stamp = now_text();
    auto row = tx.query_one("UPDATE requests SET status = 'expired', closed_at = $2, updated_at = $2"
                            " WHERE id = $1 AND status = 'active' AND expires_at <= $2 RETURNING buyer_id, title",
                            {id, stamp});
    if (!row) return;  // accepted, cancelled, or given more time since
    touched(tx);
    json offers = json::array();
    for (const auto& o : tx.query("UPDATE offers SET status = 'expired', status_reason = 'request_expired',"
                                  " updated_at = $2 WHERE request_id = $1 AND status = 'pending' RETURNING id, seller_id",
                                  {id, stamp}))
      offers.push_back({{"offer_id", o.text("id")}, {"seller_id", o.text("seller_id")}});
    outbox_.emit(tx, "request.expired",
                 {{"request_id", id}, {"buyer_id", row->text("buyer_id")}, {"offers", offers},
                  {"request_title", row->text("title")}},
                 id);
  });
}

std::pair<json, json> Marketplace::requests(db::Tx& tx, RequestFilter f, const identity::Principal* viewer) {
  std::string where = "1 = 1";
  db::Params params;
  auto bind = [&](db::Value v) {
    params.push_back(std::move(v));
    return "$" + std::to_string(params.size());
  };
  std::string stamp = now_text();
  std::string status = f.status.value_or("active");
  if (status == "active") where += " AND status = 'active' AND expires_at > " + bind(stamp);
  else if (status == "expired")
    where += " AND (status = 'expired' OR (status = 'active' AND expires_at <= " + bind(stamp) + "))";
  else if (status != "any") where += " AND status = " + bind(status);
  if (f.buyer_id) where += " AND buyer_id = " + bind(*f.buyer_id);
  if (f.exclude_buyer_id) where += " AND buyer_id <> " + bind(*f.exclude_buyer_id);
  if (f.category) where += " AND category = " + bind(*f.category);
  if (!f.categories.empty()) where += " AND category IN (" + db::bind_list(params, f.categories) + ")";
  if (f.city) where += " AND city = " + bind(*f.city);
  if (f.currency) where += " AND currency = " + bind(*f.currency);
  if (f.budget_min) where += " AND budget_max >= " + bind(*f.budget_min);
  if (f.budget_max) where += " AND budget_min <= " + bind(*f.budget_max);
  if (f.q) where += " AND search_text LIKE " + bind(contains_pattern(*f.q)) + " ESCAPE '\\'";
  std::string distance;
  if (f.lat && f.lng && f.radius_km) {
    // A box around the point first (cheap), then the exact distance.
    double dlat = *f.radius_km / 111.0;
    double dlng = *f.radius_km / std::max(1.0, 111.0 * std::cos(*f.lat * 3.14159265358979323846 / 180.0));
    where += " AND lat BETWEEN " + bind(*f.lat - dlat) + " AND " + bind(*f.lat + dlat) + " AND lng BETWEEN " +
             bind(*f.lng - dlng) + " AND " + bind(*f.lng + dlng);
    distance = "souq_distance_km(lat, lng, " + bind(*f.lat) + ", " + bind(*f.lng) + ")";
    where += " AND " + distance + " <= " + bind(*f.radius_km);
  }
  std::string order;
  if (f.sort == "ending_soon") {
    order = "expires_at, id";
    if (f.cursor) {
      const json& c = *f.cursor;
      if (c.size() != 2 || !c[0].is_string() || !c[1].is_string())
        throw ApiError::validation({{"cursor", "is not a cursor this API gave out"}});
      std::string e = bind(c[0].get<std::string>()), i = bind(c[1].get<std::string>());
      where += " AND (expires_at > " + e + " OR (expires_at = " + e + " AND id > " + i + "))";
    }
  } else {
    order = "id DESC";
    if (f.cursor) {
      const json& c = *f.cursor;
      if (c.size() != 1 || !c[0].is_string()) throw ApiError::validation({{"cursor", "is not a cursor this API gave out"}});
      where += " AND id < " + bind(c[0].get<std::string>());
    }
  }
  std::string sql = std::string("SELECT ") + kRequestColumns + (distance.empty() ? "" : ", " + distance + " AS distance_km") +
                    " FROM requests WHERE " + where + " ORDER BY " + order + " LIMIT " + bind(int64_t(f.limit + 1));
  auto rows = tx.query(sql, params);
  std::vector<std::string> buyers;
  for (const auto& r : rows) buyers.push_back(r.text("buyer_id"));
  auto people = identity_.summaries(tx, buyers);
  json items = json::array();
  for (size_t i = 0; i < rows.size() && int(i) < f.limit; ++i) {
    json item = request_json(rows[i], viewer, people);
    if (!distance.empty()) item["distance_km"] = std::round(rows[i].real("distance_km") * 10.0) / 10.0;
    items.push_back(std::move(item));
  }
  json next = nullptr;
  if (int(rows.size()) > f.limit) {
    const auto& last = rows[size_t(f.limit) - 1];
    next = api::encode_cursor(f.sort == "ending_soon" ? json::array({last.text("expires_at"), last.text("id")})
                                                      : json::array({last.text("id")}));
  }
  return {std::move(items), std::move(next)};
}

json Marketplace::seller_categories(db::Tx& tx, const std::string& seller_id) {
  json out = json::array();
  for (const auto& r : tx.query("SELECT category FROM seller_categories WHERE seller_id = $1 ORDER BY category", {seller_id}))
    out.push_back(r.text("category"));
  return out;
}

json Marketplace::set_seller_categories(const identity::Principal& who, const std::vector<std::string>& categories) {
  return db_.write([&](db::Tx& tx) {
    tx.exec("DELETE FROM seller_categories WHERE seller_id = $1", {who.user_id});
    for (const auto& c : categories)
      tx.exec("INSERT INTO seller_categories (seller_id, category) VALUES ($1, $2) ON CONFLICT DO NOTHING",
              {who.user_id, c});
    return seller_categories(tx, who.user_id);
  });
}

}  // namespace souq::marketplace
