// Product reviews: a buyer reviews a product once per purchased order line
// after delivery; the product's and seller's aggregates change in the same
// transaction; the seller replies once; admins hide a review (a report's
// outcome) and the aggregates follow.
#include <cmath>

#include "core/id.hpp"
#include "core/time.hpp"
#include "modules/audit/module.hpp"
#include "modules/catalog/module.hpp"

namespace souq::catalog {
namespace {

constexpr const char* kReviewColumns =
    "id, product_id, seller_id, buyer_id, order_id, order_item_id, sku_id, rating, title, body, reply, replied_at, status,"
    " created_at, updated_at";

json review_json(const db::Row& r, const std::map<std::string, json>& people) {
  json buyer = identity::summary_of(people, r.text("buyer_id"));
  return {{"id", r.text("id")},
          {"product_id", r.text("product_id")},
          {"sku_id", r.text("sku_id")},
          {"order_id", r.text("order_id")},
          {"order_item_id", r.text("order_item_id")},
          {"rating", r.integer("rating")},
          {"title", r.text("title")},
          {"body", r.text("body")},
          {"buyer", {{"id", r.text("buyer_id")}, {"display_name", buyer.value("display_name", "")}}},
          {"reply", r.is_null("reply") ? json(nullptr) : json{{"body", r.text("reply")}, {"created_at", r.text("replied_at")}}},
          {"status", r.text("status")},
          {"verified_purchase", true},
          {"created_at", r.text("created_at")},
          {"updated_at", r.text("updated_at")}};
}

// Adds (sign +1) or removes (-1) a rating from the product's and seller's sums.
void count_rating(db::Tx& tx, const std::string& product_id, const std::string& seller_id, int64_t rating, int sign) {
  tx.exec("UPDATE products SET rating_count = rating_count + $2, rating_total = rating_total + $3 WHERE id = $1",
          {product_id, int64_t(sign), sign * rating});
  tx.exec("INSERT INTO seller_review_stats (seller_id, rating_count, rating_total) VALUES ($1, $2, $3)"
          " ON CONFLICT (seller_id) DO UPDATE SET rating_count = seller_review_stats.rating_count + excluded.rating_count,"
          " rating_total = seller_review_stats.rating_total + excluded.rating_total",
          {seller_id, int64_t(sign), sign * rating});
}

std::optional<db::Row> load_review(db::Tx& tx, const std::string& id, bool lock) {
  return tx.query_one(std::string("SELECT ") + kReviewColumns + " FROM product_reviews WHERE id = $1" +
                          std::string(lock ? tx.for_update() : ""),
                      {id});
}

}  // namespace

json Catalog::create_review(const identity::Principal& who, const std::string& product_id, const json& f,
                            const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto product = tx.query_one("SELECT seller_id FROM products WHERE id = $1 AND deleted_at IS NULL", {product_id});
    if (!product) throw ApiError::not_found("No such product.");
    std::vector<PurchasedLine> lines = purchases_ ? purchases_(tx, who.user_id, product_id) : std::vector<PurchasedLine>{};
    if (f.contains("order_item_id"))
      std::erase_if(lines, [&](const PurchasedLine& l) { return l.order_item_id != f["order_item_id"]; });
    if (lines.empty())
      throw ApiError(403, "not_purchased", "Only a buyer who bought this product reviews it.");
    // The first delivered line not reviewed yet.
    const PurchasedLine* chosen = nullptr;
    bool any_delivered = false;
    for (const auto& l : lines) {
      if (!l.delivered) continue;
      any_delivered = true;
      if (!tx.query_one("SELECT 1 AS x FROM product_reviews WHERE order_item_id = $1", {l.order_item_id})) {
        chosen = &l;
        break;
      }
    }
    if (!any_delivered)
      throw ApiError::conflict("not_delivered", "A purchase is reviewed once it has been delivered.");
    if (!chosen) throw ApiError::conflict("already_reviewed", "You have reviewed every purchase of this product.");
    std::string id = new_id("rev");
    std::string now = now_text();
    int64_t rating = f.at("rating");
    std::string seller = product->text("seller_id");
    try {
      tx.exec("INSERT INTO product_reviews (id, product_id, seller_id, buyer_id, order_id, order_item_id, sku_id, rating,"
              " title, body, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'published', $11, $11)",
              {id, product_id, seller, who.user_id, chosen->order_id, chosen->order_item_id, chosen->sku_id, rating,
               f.value("title", ""), f.value("body", ""), now});
    } catch (const db::ConstraintError&) {
      throw ApiError::conflict("already_reviewed", "This purchase has been reviewed already.");
    }
    count_rating(tx, product_id, seller, rating, +1);
    outbox_.emit(tx, "review.created",
                 {{"review_id", id}, {"product_id", product_id}, {"seller_id", seller}, {"buyer_id", who.user_id},
                  {"rating", rating}},
                 id, request_id);
    changed(tx, product_id, "product.reviewed", request_id);
    forget_seller_at_commit(tx, seller);  // every page of the seller shows their rating
    auto people = identity_.summaries(tx, {who.user_id});
    return review_json(*load_review(tx, id, false), people);
  });
}

std::pair<json, json> Catalog::reviews(db::Tx& tx, const std::string& product_id, const std::optional<std::string>& before,
                                       int limit) {
  if (!tx.query_one("SELECT 1 AS x FROM products WHERE id = $1 AND deleted_at IS NULL AND status = 'active'", {product_id}))
    throw ApiError::not_found("No such product.");
  auto rows = db::newest_first(tx, std::string("SELECT ") + kReviewColumns + " FROM product_reviews",
                               {{"product_id", product_id}, {"status", std::string("published")}}, before, limit);
  std::vector<std::string> buyers;
  for (const auto& r : rows) buyers.push_back(r.text("buyer_id"));
  auto people = identity_.summaries(tx, buyers);
  return db::page_of(rows, limit, [&](const db::Row& r) { return review_json(r, people); });
}

json Catalog::reply_to_review(const identity::Principal& who, const std::string& review_id, const std::string& text,
                              const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto r = load_review(tx, review_id, true);
    if (!r || r->text("status") != "published") throw ApiError::not_found("No such review.");
    if (r->text("seller_id") != who.user_id)
      throw ApiError(403, "not_product_owner", "Only the product's seller replies to its reviews.");
    std::string now = now_text();
    if (tx.exec("UPDATE product_reviews SET reply = $2, replied_at = $3, updated_at = $3 WHERE id = $1 AND reply IS NULL",
                {review_id, text, now}) == 0)
      throw ApiError::conflict("already_replied", "You have replied to this review already.");
    outbox_.emit(tx, "review.replied",
                 {{"review_id", review_id}, {"product_id", r->text("product_id")}, {"buyer_id", r->text("buyer_id")}},
                 review_id, request_id);
    auto people = identity_.summaries(tx, {r->text("buyer_id")});
    return review_json(*load_review(tx, review_id, false), people);
  });
}

json Catalog::set_review_status(const identity::Principal& admin, const std::string& review_id, const std::string& status,
                                const std::string& reason, const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto r = load_review(tx, review_id, true);
    if (!r) throw ApiError::not_found("No such review.");
    if (r->text("status") != status) {
      tx.exec("UPDATE product_reviews SET status = $2, updated_at = $3 WHERE id = $1", {review_id, status, now_text()});
      count_rating(tx, r->text("product_id"), r->text("seller_id"), r->integer("rating"), status == "hidden" ? -1 : +1);
      changed(tx, r->text("product_id"), "product.reviewed", request_id);
      forget_seller_at_commit(tx, r->text("seller_id"));
    }
    audit::record(tx, {admin.user_id, "review." + std::string(status == "hidden" ? "hide" : "show"), "review", review_id,
                       reason, json::object(), request_id});
    auto people = identity_.summaries(tx, {r->text("buyer_id")});
    return review_json(*load_review(tx, review_id, false), people);
  });
}

}  // namespace souq::catalog
