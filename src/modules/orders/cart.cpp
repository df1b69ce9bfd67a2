// The cart: lines of SKUs, re-priced and re-checked against stock every
// time it is read (seed 003: "prices and stock re-validated on read").
#include <set>

#include "core/time.hpp"
#include "modules/orders/module.hpp"

namespace souq::orders {

Orders::Orders(db::Database& db, jobs::Outbox& outbox, identity::Identity& identity,
               transactions::Transactions& transactions, catalog::Catalog& catalog, payments::Payments& payments)
    : db_(db), outbox_(outbox), identity_(identity), transactions_(transactions), catalog_(catalog), payments_(payments) {}

json Orders::cart(db::Tx& tx, const std::string& buyer_id) {
  auto rows = tx.query("SELECT sku_id, quantity, price_seen, currency, added_at FROM cart_items WHERE buyer_id = $1"
                       " ORDER BY added_at, sku_id",
                       {buyer_id});
  std::vector<std::string> skus, sellers;
  for (const auto& r : rows) skus.push_back(r.text("sku_id"));
  auto quotes = catalog_.quote(tx, skus);
  std::map<std::string, const catalog::SkuQuote*> by_sku;
  for (const auto& q : quotes) {
    by_sku[q.sku_id] = &q;
    sellers.push_back(q.seller_id);
  }
  auto names = identity_.business_names(tx, sellers);
  json items = json::array();
  int64_t subtotal = 0, count = 0, problems = 0;
  std::set<std::string> currencies;
  bool price_changed = false;
  for (const auto& r : rows) {
    std::string sku = r.text("sku_id");
    int64_t quantity = r.integer("quantity"), seen = r.integer("price_seen");
    auto it = by_sku.find(sku);
    const catalog::SkuQuote* q = it == by_sku.end() ? nullptr : it->second;
    json problem = nullptr;
    if (!q || !q->sellable()) problem = "unavailable";
    else if (q->seller_id == buyer_id) problem = "own_product";
    else if (q->available() < quantity) problem = q->available() <= 0 ? "out_of_stock" : "insufficient_stock";
    if (!problem.is_null()) ++problems;
    int64_t price = q ? q->price : seen;
    std::string currency = q ? q->currency : r.text("currency");
    bool changed = q && (q->price != seen || q->currency != r.text("currency"));
    price_changed = price_changed || changed;
    if (problem.is_null()) {
      subtotal += price * quantity;
      currencies.insert(currency);
    }
    count += quantity;
    items.push_back({{"sku_id", sku},
                     {"product_id", q ? json(q->product_id) : json(nullptr)},
                     {"title", q ? json(q->title) : json(nullptr)},
                     {"attributes", q ? q->attributes : json::object()},
                     {"image", q ? q->image : json(nullptr)},
                     {"seller", q ? json{{"id", q->seller_id},
                                         {"name", names.count(q->seller_id) ? names[q->seller_id] : ""}}
                                  : json(nullptr)},
                     {"quantity", quantity},
                     {"unit_price", price},
                     {"price_seen", seen},
                     {"price_changed", changed},
                     {"currency", currency},
                     {"line_total", price * quantity},
                     {"available", q ? std::max<int64_t>(q->available(), 0) : 0},
                     {"problem", problem},
                     {"added_at", r.text("added_at")}});
  }
  if (currencies.size() > 1) ++problems;
  return {{"items", items},
          {"item_count", count},
          {"subtotal", subtotal},
          {"currency", currencies.size() == 1 ? json(*currencies.begin()) : json(nullptr)},
          {"mixed_currencies", currencies.size() > 1},
          {"price_changed", price_changed},
          {"problems", problems},
          {"checkout_ready", problems == 0 && !rows.empty()}};
}

namespace {

// The SKU as the buyer may put it in a cart: 422 unknown_sku, 409
// product_unavailable, 422 cannot_buy_own_product, 409 insufficient_stock.
catalog::SkuQuote buyable(catalog::Catalog& catalog, db::Tx& tx, const std::string& buyer_id, const std::string& sku_id,
                          int64_t quantity) {
  auto quotes = catalog.quote(tx, {sku_id});
  if (quotes.empty()) throw ApiError::unprocessable("unknown_sku", "There is no such SKU.", {{"sku_id", sku_id}});
  const auto& q = quotes.front();
  if (!q.sellable())
    throw ApiError::conflict("product_unavailable", "This product is not for sale now.", {{"sku_id", sku_id}});
  if (q.seller_id == buyer_id)
    throw ApiError::unprocessable("cannot_buy_own_product", "You cannot buy your own product.", {{"sku_id", sku_id}});
  if (q.available() < quantity)
    throw ApiError::conflict("insufficient_stock", "Not enough stock left for this item.",
                             {{"sku_id", sku_id}, {"requested", quantity}, {"available", std::max<int64_t>(q.available(), 0)}});
  return q;
}

}  // namespace

json Orders::add_to_cart(const identity::Principal& who, const std::string& sku_id, int64_t quantity) {
  return db_.write([&](db::Tx& tx) {
    auto line = tx.query_one(std::string("SELECT quantity FROM cart_items WHERE buyer_id = $1 AND sku_id = $2") +
                                 std::string(tx.for_update()),
                             {who.user_id, sku_id});
    int64_t total = quantity + (line ? line->integer("quantity") : 0);
    if (total > kMaxQuantity)
      throw ApiError::unprocessable("quantity_too_large", "At most " + std::to_string(kMaxQuantity) + " of one item.",
                                    {{"sku_id", sku_id}});
    auto q = buyable(catalog_, tx, who.user_id, sku_id, total);
    std::string now = now_text();
    if (line) {
      tx.exec("UPDATE cart_items SET quantity = $3, price_seen = $4, currency = $5, updated_at = $6"
              " WHERE buyer_id = $1 AND sku_id = $2",
              {who.user_id, sku_id, total, q.price, q.currency, now});
    } else {
      auto lines = tx.query_one("SELECT COUNT(*) AS n FROM cart_items WHERE buyer_id = $1", {who.user_id});
      if (lines->integer("n") >= kMaxCartLines)
        throw ApiError::unprocessable("cart_full", "A cart holds at most " + std::to_string(kMaxCartLines) + " items.");
      tx.exec("INSERT INTO cart_items (buyer_id, sku_id, quantity, price_seen, currency, added_at, updated_at)"
              " VALUES ($1, $2, $3, $4, $5, $6, $6)",
              {who.user_id, sku_id, total, q.price, q.currency, now});
    }
    return cart(tx, who.user_id);
  });
}

json Orders::set_quantity(const identity::Principal& who, const std::string& sku_id, int64_t quantity) {
  return db_.write([&](db::Tx& tx) {
    if (!tx.query_one("SELECT 1 AS x FROM cart_items WHERE buyer_id = $1 AND sku_id = $2", {who.user_id, sku_id}))
      throw ApiError::not_found("This item is not in your cart.");
    auto q = buyable(catalog_, tx, who.user_id, sku_id, quantity);
    tx.exec("UPDATE cart_items SET quantity = $3, price_seen = $4, currency = $5, updated_at = $6"
            " WHERE buyer_id = $1 AND sku_id = $2",
            {who.user_id, sku_id, quantity, q.price, q.currency, now_text()});
    return cart(tx, who.user_id);
  });
}

json Orders::remove_from_cart(const identity::Principal& who, const std::string& sku_id) {
  return db_.write([&](db::Tx& tx) {
    if (tx.exec("DELETE FROM cart_items WHERE buyer_id = $1 AND sku_id = $2", {who.user_id, sku_id}) == 0)
      throw ApiError::not_found("This item is not in your cart.");
    return cart(tx, who.user_id);
  });
}

json Orders::clear_cart(const identity::Principal& who) {
  return db_.write([&](db::Tx& tx) {
    tx.exec("DELETE FROM cart_items WHERE buyer_id = $1", {who.user_id});
    return cart(tx, who.user_id);
  });
}

}  // namespace souq::orders
