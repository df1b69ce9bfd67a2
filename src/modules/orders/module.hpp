// The orders module (seed 003's cart and order services): a cart per buyer,
// checkout, and the orders it makes — one per seller, each a transaction
// (kind "order") on the built-in `purchase` process.
//
// Checkout, in one database transaction: claim the cart's lines, price them
// on the server, reserve stock for every line (the catalog's guarded
// updates), make one order per seller and, for the wallet, pay each from the
// buyer's balance. With a gateway, one payment for the checkout's total goes
// to the buyer's wallet when it succeeds, and each order still waiting is
// then paid from there (a checkout may be paid again, for what it still
// owes, when its payment failed). An order not paid in 15 minutes is
// cancelled and its stock released (the process's timer).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/blocking.hpp"
#include "core/json.hpp"
#include "db/database.hpp"
#include "http/idempotency.hpp"
#include "http/router.hpp"
#include "jobs/queue.hpp"
#include "modules/catalog/module.hpp"
#include "modules/identity/module.hpp"
#include "modules/identity/policy.hpp"
#include "modules/payments/module.hpp"
#include "modules/transactions/module.hpp"

namespace souq::orders {

struct CheckoutRequest {
  std::optional<std::string> provider;       // wallet | a gateway; none: pay later (POST /payments)
  std::optional<int64_t> expected_total;     // the total the buyer was shown (accepts changed prices)
  json shipping_address = nullptr;
  std::optional<std::string> return_url;
};

struct OrderFilter {
  std::optional<std::string> state, role;  // role: buyer | seller (of the caller)
  bool everyone = false;                   // admins: every order
  std::optional<std::string> buyer_id, seller_id;
  std::optional<std::string> before;
  int limit = 20;
};

class Orders {
 public:
  static constexpr int kMaxCartLines = 100;
  static constexpr int64_t kMaxQuantity = 999;

  Orders(db::Database& db, jobs::Outbox& outbox, identity::Identity& identity, transactions::Transactions& transactions,
         catalog::Catalog& catalog, payments::Payments& payments);

  // commit_stock, release_stock, restock, record_shipment, record_delivery.
  // Without an Orders (souq processes check), the names only.
  static void register_actions(transactions::Actions& actions, Orders* orders);
  // A checkout's gateway payment, once it succeeds, pays its orders.
  void follow_payments(jobs::Outbox& outbox);

  // ---- cart
  json cart(db::Tx& tx, const std::string& buyer_id);
  // Adds to the line (or makes it); re-prices the line.
  json add_to_cart(const identity::Principal& who, const std::string& sku_id, int64_t quantity);
  json set_quantity(const identity::Principal& who, const std::string& sku_id, int64_t quantity);
  json remove_from_cart(const identity::Principal& who, const std::string& sku_id);
  json clear_cart(const identity::Principal& who);

  // ---- checkout and orders
  json checkout(const identity::Principal& who, const CheckoutRequest& r, const std::string& request_id);
  // A new gateway payment for what a checkout still owes (its orders
  // waiting for payment): after the first failed to start, or declined, or
  // to pay later. 404 for another buyer's; 409 nothing_to_pay.
  json pay_checkout_again(const identity::Principal& who, const std::string& checkout_id, const std::string& provider,
                          const std::optional<std::string>& return_url, const std::string& request_id);
  json order(db::Tx& tx, const std::string& id, const identity::Principal& who);
  std::pair<json, json> orders(db::Tx& tx, const OrderFilter& f, const identity::Principal& who);
  // The buyer or seller cancels: before payment (stock released) or after
  // payment and before shipping (refund, stock returned).
  json cancel(const identity::Principal& who, const std::string& id, const std::string& reason,
              const std::string& request_id);
  json ship(const identity::Principal& who, const std::string& id, const std::string& carrier,
            const std::string& tracking_number, const std::string& request_id);
  // A step of the process by name (deliver, confirm) as `who`.
  json step(const identity::Principal& who, const std::string& id, const std::string& transition,
            const std::string& request_id);

  // What the buyer bought of a product (reviews).
  std::vector<catalog::PurchasedLine> purchased(db::Tx& tx, const std::string& buyer_id, const std::string& product_id);
  // The category of an order's largest line (commission).
  std::optional<std::string> category_of(db::Tx& tx, const std::string& order_id);

  db::Database& db() { return db_; }

 private:
  json order_json(db::Tx& tx, const transactions::Record& txn, const identity::Principal& who, bool full);
  std::vector<catalog::StockLine> lines_of(db::Tx& tx, const std::string& order_id);
  void pay_checkout(const std::string& payment_id, const std::string& request_id);
  // A top-up through the gateway into the buyer's wallet, under `payment_id`.
  json start_payment(const identity::Principal& who, const std::string& payment_id, int64_t amount,
                     const std::string& currency, const std::string& provider,
                     const std::optional<std::string>& return_url, const std::string& request_id);
  transactions::Record load_order(db::Tx& tx, const std::string& id, const identity::Principal& who);

  db::Database& db_;
  jobs::Outbox& outbox_;
  identity::Identity& identity_;
  transactions::Transactions& transactions_;
  catalog::Catalog& catalog_;
  payments::Payments& payments_;
};

void register_policies(identity::Policy& policy);
// /api/v1/cart…, /api/v1/orders…, /api/v1/seller/orders…, /api/v1/admin/orders.
void register_routes(api::Router& router, Orders& orders, identity::Identity& identity, const identity::Policy& policy,
                     api::Idempotency& idempotency, BlockingPool& blocking);

}  // namespace souq::orders
