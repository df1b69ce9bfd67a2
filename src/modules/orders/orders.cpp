// Checkout and orders: one order per seller, each a transaction on the
// `purchase` process; the process's stock and shipment actions.
#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "core/id.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "modules/orders/module.hpp"

namespace souq::orders {
namespace {

// How long a checkout's gateway payment may stay pending before another is
// started for the same orders (they lapse after as long).
constexpr std::chrono::minutes kPaymentPatience{15};

constexpr const char* kDetailColumns =
    "order_id, checkout_id, buyer_id, seller_id, subtotal, currency, shipping_address, stock, carrier, tracking_number,"
    " shipped_at, delivered_at, created_at";

json item_json(const db::Row& r) {
  return {{"id", r.text("id")},
          {"product_id", r.text("product_id")},
          {"sku_id", r.text("sku_id")},
          {"title", r.text("title")},
          {"attributes", r.json("attributes")},
          {"image", r.nullable_text("image")},
          {"unit_price", r.integer("unit_price")},
          {"quantity", r.integer("quantity")},
          {"line_total", r.integer("line_total")},
          {"currency", r.text("currency")}};
}

void add_details(json& out, const db::Row& d, json items) {
  out["checkout_id"] = d.text("checkout_id");
  out["items"] = std::move(items);
  out["shipping_address"] = d.is_null("shipping_address") ? json(nullptr) : d.json("shipping_address");
  out["stock"] = d.text("stock");
  out["shipment"] = {{"carrier", d.nullable_text("carrier")},
                     {"tracking_number", d.nullable_text("tracking_number")},
                     {"shipped_at", d.nullable_text("shipped_at")},
                     {"delivered_at", d.nullable_text("delivered_at")}};
}

// The order the running action is about (orders only: other kinds have no details).
bool is_order(const transactions::ActionContext& c) { return c.txn.kind == "order"; }

}  // namespace

// ---- actions ----------------------------------------------------------------

void Orders::register_actions(transactions::Actions& actions, Orders* o) {
  auto spec = [o](std::string description, void (*fn)(Orders&, transactions::ActionContext&)) {
    transactions::ActionSpec s;
    s.description = std::move(description);
    if (o) s.run = [o, fn](transactions::ActionContext& c) { if (is_order(c)) fn(*o, c); };
    else s.run = [](transactions::ActionContext&) { throw std::logic_error("orders actions need the orders module"); };
    return s;
  };
  // Each moves stock once: the guarded update of order_details.stock says
  // whether this order's stock is where the action expects it.
  actions.add("commit_stock", spec("Turn the order's reserved stock into sold stock", [](Orders& o, transactions::ActionContext& c) {
    if (c.tx.exec("UPDATE order_details SET stock = 'committed' WHERE order_id = $1 AND stock = 'reserved'", {c.txn.id}) == 1)
      o.catalog_.commit(c.tx, o.lines_of(c.tx, c.txn.id), c.request_id);
  }));
  actions.add("release_stock", spec("Release the stock an unpaid order held", [](Orders& o, transactions::ActionContext& c) {
    if (c.tx.exec("UPDATE order_details SET stock = 'released' WHERE order_id = $1 AND stock = 'reserved'", {c.txn.id}) == 1)
      o.catalog_.release(c.tx, o.lines_of(c.tx, c.txn.id), c.request_id);
  }));
  // Goods that left with the carrier are not on the shelf: a shipped order's
  // stock stays sold (the seller restocks what comes back by hand).
  actions.add("restock", spec("Return an unshipped order's stock to the shelf", [](Orders& o, transactions::ActionContext& c) {
    if (c.tx.exec("UPDATE order_details SET stock = 'returned' WHERE order_id = $1 AND stock = 'committed'"
                  " AND shipped_at IS NULL",
                  {c.txn.id}) == 1)
      o.catalog_.restock(c.tx, o.lines_of(c.tx, c.txn.id), c.request_id);
    else if (c.tx.exec("UPDATE order_details SET stock = 'released' WHERE order_id = $1 AND stock = 'reserved'", {c.txn.id}) == 1)
      o.catalog_.release(c.tx, o.lines_of(c.tx, c.txn.id), c.request_id);
  }));
  actions.add("record_shipment", spec("Stamp the shipment (the seller gives carrier and tracking number)",
                                      [](Orders&, transactions::ActionContext& c) {
    if (c.tx.exec("UPDATE order_details SET shipped_at = $2 WHERE order_id = $1 AND tracking_number IS NOT NULL",
                  {c.txn.id, now_text()}) == 0)
      throw ApiError::unprocessable("tracking_required", "Ship through /api/v1/seller/orders/{id}/ship with a carrier and "
                                                         "tracking number.");
  }));
  actions.add("record_delivery", spec("Stamp the delivery", [](Orders&, transactions::ActionContext& c) {
    c.tx.exec("UPDATE order_details SET delivered_at = $2 WHERE order_id = $1 AND delivered_at IS NULL", {c.txn.id, now_text()});
  }));
}

std::vector<catalog::StockLine> Orders::lines_of(db::Tx& tx, const std::string& order_id) {
  std::vector<catalog::StockLine> out;
  for (const auto& r : tx.query("SELECT sku_id, quantity FROM order_items WHERE order_id = $1", {order_id}))
    out.push_back({r.text("sku_id"), r.integer("quantity")});
  return out;
}

// ---- checkout ---------------------------------------------------------------

json Orders::checkout(const identity::Principal& who, const CheckoutRequest& r, const std::string& request_id) {
  if (r.provider) payments_.require_provider(*r.provider);
  bool gateway = r.provider && *r.provider != "wallet";
  std::string payment_id = gateway ? new_id("pay") : "";
  int64_t total = 0;
  std::string currency, checkout_id;
  json out = db_.write([&](db::Tx& tx) -> json {
    // Claim the cart: a second checkout racing for the same cart finds it
    // empty (and gets it back if this one rolls back).
    auto claimed = tx.query("DELETE FROM cart_items WHERE buyer_id = $1 RETURNING sku_id, quantity, price_seen, currency",
                            {who.user_id});
    if (claimed.empty()) throw ApiError::unprocessable("cart_empty", "Your cart is empty.");
    std::vector<std::string> skus;
    for (const auto& l : claimed) skus.push_back(l.text("sku_id"));
    auto quotes = catalog_.quote(tx, skus);
    std::map<std::string, catalog::SkuQuote> by_sku;
    for (auto& q : quotes) by_sku[q.sku_id] = q;
    json stale = json::array(), changed = json::array();
    std::set<std::string> currencies;
    total = 0;
    for (const auto& l : claimed) {
      std::string sku = l.text("sku_id");
      auto it = by_sku.find(sku);
      if (it == by_sku.end() || !it->second.sellable()) {
        stale.push_back({{"sku_id", sku}, {"problem", "unavailable"}});
        continue;
      }
      const auto& q = it->second;
      if (q.seller_id == who.user_id)
        throw ApiError::unprocessable("cannot_buy_own_product", "You cannot buy your own product.", {{"sku_id", sku}});
      if (q.price != l.integer("price_seen") || q.currency != l.text("currency"))
        changed.push_back({{"sku_id", sku}, {"price_seen", l.integer("price_seen")}, {"price", q.price}});
      currencies.insert(q.currency);
      total += q.price * l.integer("quantity");
    }
    if (!stale.empty())
      throw ApiError::conflict("cart_stale", "Some items in your cart are no longer for sale; remove them and try again.",
                               {{"items", stale}});
    if (currencies.size() > 1)
      throw ApiError::unprocessable("mixed_currencies", "A checkout is paid in one currency; split the cart.");
    currency = *currencies.begin();
    // The server prices the cart. A total the buyer was shown must match it;
    // without one, any price that changed since the buyer saw it stops checkout.
    if (r.expected_total && *r.expected_total != total)
      throw ApiError::conflict("cart_total_changed", "The cart's total is not what you were shown; review it again.",
                               {{"expected_total", *r.expected_total}, {"total", total}});
    if (!r.expected_total && !changed.empty())
      throw ApiError::conflict("cart_price_changed", "Prices changed since you added these items; review your cart.",
                               {{"items", changed}, {"total", total}});
    std::vector<catalog::StockLine> stock;
    for (const auto& l : claimed) stock.push_back({l.text("sku_id"), l.integer("quantity")});
    catalog_.reserve(tx, stock, request_id);  // 409 insufficient_stock: nothing happened

    checkout_id = new_id("chk");
    std::string now = now_text();
    std::string address = r.shipping_address.is_null() ? "" : dump_json(r.shipping_address);
    tx.exec("INSERT INTO checkouts (id, buyer_id, total, currency, provider, payment_id, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            {checkout_id, who.user_id, total, currency, r.provider ? db::Value(*r.provider) : db::Value(nullptr),
             gateway ? db::Value(payment_id) : db::Value(nullptr), now});
    if (gateway)
      tx.exec("INSERT INTO checkout_payments (payment_id, checkout_id, amount, created_at) VALUES ($1, $2, $3, $4)",
              {payment_id, checkout_id, total, now});
    // One order per seller, in seller order.
    std::map<std::string, std::vector<const db::Row*>> by_seller;
    for (const auto& l : claimed) by_seller[by_sku[l.text("sku_id")].seller_id].push_back(&l);
    std::vector<std::string> sellers;
    for (const auto& [seller, _] : by_seller) sellers.push_back(seller);
    auto names = identity_.business_names(tx, sellers);
    std::map<std::string, std::string> slugs;  // category id → slug
    json orders = json::array();
    for (const auto& [seller, lines] : by_seller) {
      int64_t subtotal = 0, units = 0;
      for (const auto* l : lines) {
        subtotal += by_sku[l->text("sku_id")].price * l->integer("quantity");
        units += l->integer("quantity");
      }
      transactions::CreateSpec spec;
      spec.kind = "order";
      spec.process = "purchase";
      spec.buyer_id = who.user_id;
      spec.seller_id = seller;
      spec.subject_type = "checkout";
      spec.subject_id = checkout_id;
      spec.amount = subtotal;
      spec.currency = currency;
      const auto& first = by_sku[lines.front()->text("sku_id")];
      spec.title = lines.size() == 1 ? first.title
                                     : first.title + " and " + std::to_string(lines.size() - 1) + " more";
      spec.actor = {"buyer", who.user_id};
      spec.request_id = request_id;
      auto txn = transactions_.create(tx, spec);
      tx.exec("INSERT INTO order_details (order_id, checkout_id, buyer_id, seller_id, subtotal, currency, shipping_address,"
              " stock, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'reserved', $8)",
              {txn.id, checkout_id, who.user_id, seller, subtotal, currency,
               address.empty() ? db::Value(nullptr) : db::Value(address), now});
      for (const auto* l : lines) {
        const auto& q = by_sku[l->text("sku_id")];
        if (!slugs.count(q.category_id))
          slugs[q.category_id] = catalog_.find_category(tx, q.category_id).value_or(json{{"slug", ""}})["slug"];
        int64_t quantity = l->integer("quantity");
        tx.exec("INSERT INTO order_items (id, order_id, product_id, sku_id, category, title, attributes, image, unit_price,"
                " quantity, line_total, currency) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                {new_id("oli"), txn.id, q.product_id, q.sku_id, slugs[q.category_id], q.title, dump_json(q.attributes),
                 q.image.is_string() ? db::Value(q.image.get<std::string>()) : db::Value(nullptr), q.price, quantity,
                 q.price * quantity, currency});
      }
      (void)units;
      if (r.provider && *r.provider == "wallet") payments_.pay_from_wallet(tx, who.user_id, txn, request_id);
      orders.push_back(order_json(tx, *transactions_.load(tx, txn.id), who, true));
    }
    return {{"id", checkout_id},
            {"total", total},
            {"currency", currency},
            {"provider", r.provider ? json(*r.provider) : json(nullptr)},
            {"orders", orders},
            {"payment", nullptr},
            {"payment_error", nullptr},
            {"created_at", now}};
  });
  if (!gateway) return out;
  // One payment for the whole checkout, into the buyer's wallet; when it
  // succeeds, follow_payments pays each order from there.
  try {
    out["payment"] = start_payment(who, payment_id, total, currency, *r.provider, r.return_url, request_id);
  } catch (const ApiError& e) {
    // The orders stand (their stock held for 15 minutes); the buyer pays
    // them again with POST /checkouts/{id}/payments (or each with POST /payments).
    out["payment_error"] = {{"code", e.code()}, {"message", e.what()}};
    log::warn("checkout payment not started", {{"checkout_id", checkout_id}, {"code", e.code()}, {"request_id", request_id}});
  }
  return out;
}

json Orders::start_payment(const identity::Principal& who, const std::string& payment_id, int64_t amount,
                           const std::string& currency, const std::string& provider,
                           const std::optional<std::string>& return_url, const std::string& request_id) {
  payments::Payments::PayRequest pay;
  pay.topup_amount = amount;
  pay.currency = currency;
  pay.provider = provider;
  pay.return_url = return_url;
  pay.payment_id = payment_id;
  return payments_.pay(who, pay, request_id);
}

json Orders::pay_checkout_again(const identity::Principal& who, const std::string& checkout_id, const std::string& provider,
                                const std::optional<std::string>& return_url, const std::string& request_id) {
  if (provider == "wallet")
    throw ApiError::unprocessable("unknown_provider", "Pay a checkout again through a gateway; pay an order from the "
                                                      "wallet with POST /api/v1/payments {order_id}.",
                                  {{"providers", payments_.options().providers}});
  payments_.require_provider(provider);
  std::string payment_id = new_id("pay");
  auto [amount, currency, orders] = db_.write([&](db::Tx& tx) {
    auto c = tx.query_one("SELECT id, buyer_id, currency FROM checkouts WHERE id = $1" + std::string(tx.for_update()),
                          {checkout_id});
    if (!c || c->text("buyer_id") != who.user_id) throw ApiError::not_found("No such checkout.");
    int64_t due = 0;
    json waiting = json::array();
    for (const auto& d : tx.query("SELECT order_id, subtotal FROM order_details WHERE checkout_id = $1 ORDER BY order_id",
                                  {checkout_id})) {
      auto txn = transactions_.load(tx, d.text("order_id"));
      if (!txn || txn->state != "pending_payment") continue;
      due += d.integer("subtotal");
      waiting.push_back(d.text("order_id"));
    }
    if (due == 0) throw ApiError::conflict("nothing_to_pay", "No order of this checkout is waiting for payment.");
    // A payment of this checkout still under way (the buyer at the gateway's
    // page, its webhook not in yet, or under review) would be charged twice.
    // After 15 minutes (as long as orders wait) it counts as abandoned: if
    // it goes through after all, its money stays in the buyer's wallet.
    std::string starting = time_ago(std::chrono::seconds(60));
    for (const auto& p : tx.query("SELECT payment_id, created_at FROM checkout_payments WHERE checkout_id = $1"
                                  " AND created_at > $2",
                                  {checkout_id, time_ago(kPaymentPatience)})) {
      std::string status;
      try {
        status = payments_.payment(tx, p.text("payment_id"), who).value("status", "");
      } catch (const ApiError&) {
        // Not made yet: another request is starting it now, or (after a
        // minute) its node stopped before it could.
        status = p.text("created_at") > starting ? "starting" : "";
      }
      if (status == "pending" || status == "flagged" || status == "starting")
        throw ApiError::conflict("payment_in_progress", "A payment of this checkout is still under way; finish or abandon it first.",
                                 {{"payment_id", p.text("payment_id")}, {"status", status}});
    }
    tx.exec("INSERT INTO checkout_payments (payment_id, checkout_id, amount, created_at) VALUES ($1, $2, $3, $4)",
            {payment_id, checkout_id, due, now_text()});
    return std::tuple{due, c->text("currency"), waiting};
  });
  json payment;
  try {
    payment = start_payment(who, payment_id, amount, currency, provider, return_url, request_id);
  } catch (const ApiError&) {
    // Not started: nothing of this attempt is left (the row went in first
    // so that a webhook faster than this answer finds its checkout).
    db_.write([&](db::Tx& tx) { tx.exec("DELETE FROM checkout_payments WHERE payment_id = $1", {payment_id}); });
    throw;
  }
  return {{"checkout_id", checkout_id}, {"amount", amount}, {"currency", currency}, {"orders", orders}, {"payment", payment}};
}

void Orders::follow_payments(jobs::Outbox& outbox) {
  outbox.subscribe("payment.succeeded", "orders.checkout", [this](const json& event) {
    const json& p = event.at("payload");
    if (p.value("purpose", "") != "topup" || !p.contains("payment_id")) return;
    pay_checkout(p["payment_id"].get<std::string>(), jobs::request_id_of(event));
  });
}

void Orders::pay_checkout(const std::string& payment_id, const std::string& request_id) {
  auto checkout = db_.read([&](db::Tx& tx) {
    return tx.query_one("SELECT c.id, c.buyer_id FROM checkout_payments p JOIN checkouts c ON c.id = p.checkout_id"
                        " WHERE p.payment_id = $1",
                        {payment_id});
  });
  if (!checkout) return;  // a plain top-up
  std::vector<std::string> ids = db_.read([&](db::Tx& tx) {
    std::vector<std::string> out;
    for (const auto& r : tx.query("SELECT order_id FROM order_details WHERE checkout_id = $1 ORDER BY order_id",
                                  {checkout->text("id")}))
      out.push_back(r.text("order_id"));
    return out;
  });
  // Each order on its own: one that lapsed meanwhile leaves its share in
  // the wallet, and does not stop the others.
  for (const auto& id : ids) {
    try {
      db_.write([&](db::Tx& tx) {
        auto txn = transactions_.load(tx, id);
        if (!txn || txn->state != "pending_payment") return;
        payments_.pay_from_wallet(tx, checkout->text("buyer_id"), *txn, request_id);
      });
    } catch (const ApiError& e) {
      log::warn("checkout order not paid from the wallet",
                {{"order_id", id}, {"payment_id", payment_id}, {"code", e.code()}});
    }
  }
}

// ---- reading orders -----------------------------------------------------------

json Orders::order_json(db::Tx& tx, const transactions::Record& txn, const identity::Principal& who, bool full) {
  json out = full ? transactions_.view(tx, txn, who) : transactions_.summary(tx, txn, &who);
  auto d = tx.query_one(std::string("SELECT ") + kDetailColumns + " FROM order_details WHERE order_id = $1", {txn.id});
  json items = json::array();
  for (const auto& r : tx.query("SELECT id, product_id, sku_id, title, attributes, image, unit_price, quantity, line_total,"
                                " currency FROM order_items WHERE order_id = $1 ORDER BY id",
                                {txn.id}))
    items.push_back(item_json(r));
  if (d) add_details(out, *d, std::move(items));
  return out;
}

transactions::Record Orders::load_order(db::Tx& tx, const std::string& id, const identity::Principal& who) {
  auto txn = transactions_.load(tx, id);
  if (!txn || txn->kind != "order" || transactions_.roles_of(*txn, who).empty())
    throw ApiError::not_found("No such order.");
  return *txn;
}

json Orders::order(db::Tx& tx, const std::string& id, const identity::Principal& who) {
  return order_json(tx, load_order(tx, id, who), who, true);
}

std::pair<json, json> Orders::orders(db::Tx& tx, const OrderFilter& f, const identity::Principal& who) {
  transactions::ListFilter lf;
  lf.kind = "order";
  lf.state = f.state;
  lf.before = f.before;
  lf.limit = f.limit;
  lf.role = f.role;
  lf.everyone = f.everyone;
  lf.buyer_id = f.buyer_id;
  lf.seller_id = f.seller_id;
  auto [items, next] = transactions_.list(tx, who, lf);
  // The lines of the page's orders in one query.
  std::vector<std::string> ids;
  for (const auto& o : items) ids.push_back(o["id"]);
  if (ids.empty()) return {std::move(items), std::move(next)};
  db::Params params;
  std::string in = db::bind_list(params, ids);
  std::map<std::string, json> lines;
  for (const auto& r : tx.query("SELECT id, order_id, product_id, sku_id, title, attributes, image, unit_price, quantity,"
                                " line_total, currency FROM order_items WHERE order_id IN (" + in + ") ORDER BY id",
                                params))
    lines[r.text("order_id")].push_back(item_json(r));
  std::map<std::string, db::Row> details;
  for (const auto& d : tx.query(std::string("SELECT ") + kDetailColumns + " FROM order_details WHERE order_id IN (" + in + ")",
                                params))
    details.emplace(d.text("order_id"), d);
  for (auto& o : items) {
    std::string id = o["id"];
    if (auto it = details.find(id); it != details.end()) add_details(o, it->second, lines[id].is_null() ? json::array() : lines[id]);
  }
  return {std::move(items), std::move(next)};
}

// ---- steps ------------------------------------------------------------------

json Orders::cancel(const identity::Principal& who, const std::string& id, const std::string& reason,
                    const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto txn = load_order(tx, id, who);
    auto roles = transactions_.roles_of(txn, who);
    std::string as = std::find(roles.begin(), roles.end(), "buyer") != roles.end()    ? "buyer"
                     : std::find(roles.begin(), roles.end(), "seller") != roles.end() ? "seller"
                                                                                      : "operator";
    std::string step = txn.state == "pending_payment" ? "cancel" : txn.state == "paid" ? "cancel_paid" : "";
    if (step.empty())
      throw ApiError::conflict("not_cancellable", "An order is cancelled only before it ships.", {{"state", txn.state}});
    if (step == "cancel_paid" && reason.empty())
      throw ApiError::validation({{"reason", "is required to cancel a paid order"}});
    auto next = transactions_.apply(tx, txn, step, {as, who.user_id}, reason, request_id);
    return order_json(tx, next, who, true);
  });
}

json Orders::ship(const identity::Principal& who, const std::string& id, const std::string& carrier,
                  const std::string& tracking_number, const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto txn = load_order(tx, id, who);
    if (txn.seller_id != who.user_id) throw ApiError(403, "not_the_seller", "Only the order's seller ships it.");
    if (txn.state != "paid")
      throw ApiError::conflict("invalid_transition", "Only a paid order is shipped.", {{"state", txn.state}});
    tx.exec("UPDATE order_details SET carrier = $2, tracking_number = $3 WHERE order_id = $1", {id, carrier, tracking_number});
    auto next = transactions_.apply(tx, txn, "ship", {"seller", who.user_id}, "", request_id);
    return order_json(tx, next, who, true);
  });
}

json Orders::step(const identity::Principal& who, const std::string& id, const std::string& transition,
                  const std::string& request_id) {
  db_.read([&](db::Tx& tx) { load_order(tx, id, who); });  // 404 before anything else
  transactions_.take(who, id, transition, "", request_id);
  return db_.read([&](db::Tx& tx) { return order(tx, id, who); });
}

// ---- for other modules ------------------------------------------------------------

std::vector<catalog::PurchasedLine> Orders::purchased(db::Tx& tx, const std::string& buyer_id,
                                                      const std::string& product_id) {
  std::vector<catalog::PurchasedLine> out;
  for (const auto& r : tx.query("SELECT i.id, i.order_id, i.sku_id, d.delivered_at FROM order_items i"
                                " JOIN order_details d ON d.order_id = i.order_id"
                                " WHERE d.buyer_id = $1 AND i.product_id = $2 ORDER BY i.id",
                                {buyer_id, product_id})) {
    auto txn = transactions_.load(tx, r.text("order_id"));
    if (!txn || txn->state == "pending_payment" || txn->state == "cancelled" || txn->state == "refunded") continue;
    out.push_back({r.text("order_id"), r.text("id"), r.text("sku_id"), !r.is_null("delivered_at")});
  }
  return out;
}

std::optional<std::string> Orders::category_of(db::Tx& tx, const std::string& order_id) {
  auto r = tx.query_one("SELECT category FROM order_items WHERE order_id = $1 ORDER BY line_total DESC, id LIMIT 1",
                        {order_id});
  if (!r || r->text("category").empty()) return std::nullopt;
  return r->text("category");
}

}  // namespace souq::orders
