#include "app/modules.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace souq::app {

identity::Options identity_options(const Config& c) {
  identity::Options o;
  o.jwt_secret = c.jwt_secret;
  o.issuer = c.jwt_issuer;
  o.access_ttl = std::chrono::seconds(c.access_token_ttl);
  o.refresh_ttl = std::chrono::seconds(c.refresh_token_ttl);
  o.otp_resend_cooldown = std::chrono::seconds(c.otp_resend_cooldown);
  o.otp_per_ip_per_hour = c.otp_per_ip_per_hour;
  o.otp_per_phone_per_hour = c.otp_per_phone_per_hour;
  o.otp_per_phone_per_hour_all = 3 * c.otp_per_phone_per_hour;
  o.otp_failures_per_phone = c.otp_failures_per_phone;
  o.otp_ttl = std::chrono::seconds(c.otp_ttl);
  o.login_failures_per_email = c.login_failures_per_email;
  o.login_failures_per_ip = 5 * c.login_failures_per_email;
  o.session_cache_size = size_t(c.session_cache_size);
  o.session_feed_interval = std::chrono::milliseconds(c.session_feed_ms);
  return o;
}

namespace {
chat::Options chat_options(const Config& c) {
  chat::Options o;
  o.max_attachment = c.chat_max_attachment;
  return o;
}
}  // namespace

realtime::Options realtime_options(const Config& c) {
  realtime::Options o;
  o.app_id = c.realtime_app_id;
  o.key = c.realtime_key;
  o.secret = c.realtime_secret;
  o.activity_timeout = std::chrono::seconds(c.realtime_activity_timeout);
  o.pong_timeout = std::chrono::seconds(c.realtime_pong_timeout);
  o.max_connections = size_t(c.realtime_max_connections);
  o.max_message = c.realtime_max_message;
  o.redis = c.redis;
  o.public_host = c.realtime_public_host;
  o.public_port = c.realtime_public_port;
  o.public_tls = c.realtime_public_tls;
  return o;
}

notifications::Options notifications_options(const Config& c) {
  notifications::Options o;
  o.push_provider = c.push_provider;
  o.fcm_credentials = c.fcm_credentials;
  o.fcm_base_url = c.fcm_base_url;
  o.fcm_token_url = c.fcm_token_url;
  o.email_provider = c.email_provider;
  o.smtp_url = c.smtp_url;
  o.smtp_user = c.smtp_user;
  o.smtp_password = c.smtp_password;
  o.email_from = c.email_from;
  return o;
}

payments::Options payments_options(const Config& c) {
  payments::Options o;
  o.providers = c.payment_providers;
  if (o.providers.empty()) o.providers = c.dev ? std::vector<std::string>{"wallet", "sandbox"} : std::vector<std::string>{"wallet"};
  auto has = [&](const char* p) { return std::find(o.providers.begin(), o.providers.end(), p) != o.providers.end(); };
  // Sandbox money is made by pressing a button; beside a real gateway it
  // could be paid out as real money.
  if (has("sandbox") && has("stripe") && !c.dev)
    throw std::invalid_argument("--payment-providers: sandbox beside stripe is allowed only with --dev "
                                "(sandbox balances could be paid out as real money)");
  o.public_url = c.public_url.empty() ? "http://" + c.listen : c.public_url;  // serve: the bound port, below
  o.sandbox_secret = c.sandbox_secret;
  o.merchant_id = c.merchant_id;
  o.stripe_base_url = c.stripe_base_url;
  o.stripe_secret_key = c.stripe_secret_key;
  o.stripe_webhook_secret = c.stripe_webhook_secret;
  o.webhook_tolerance = std::chrono::seconds(c.webhook_tolerance);
  return o;
}

catalog::Options catalog_options(const Config& c) {
  catalog::Options o;
  o.moderation = c.product_moderation;
  o.media_base_url = c.media_base_url;
  // Until the server knows its port (serve), or for good (worker).
  if (o.media_base_url.empty() && !c.public_url.empty()) o.media_base_url = c.public_url + "/media";
  o.cache_ttl = std::chrono::seconds(c.product_cache_ttl);
  return o;
}

void register_all_actions(transactions::Actions& actions, payments::Payments* payments, orders::Orders* orders) {
  transactions::register_actions(actions);
  marketplace::Marketplace::register_actions(actions);
  ratings::Ratings::register_actions(actions);
  chat::Chat::register_actions(actions);
  if (payments) payments->register_actions(actions);
  else payments::Payments::register_action_names(actions);
  orders::Orders::register_actions(actions, orders);
}

namespace {
marketplace::Options marketplace_options(const Config& c) {
  marketplace::Options o;
  o.deal_process = c.deal_process;
  o.list_cache_ttl = std::chrono::milliseconds(c.list_cache_ms);
  return o;
}
}  // namespace

Modules::Modules(const Config& config, db::Database& db, jobs::Queue& queue, jobs::Outbox& outbox, sms::Sms& sms)
    : identity(db, identity_options(config)),
      transactions(db, queue, outbox, identity, processes, actions),
      marketplace(db, queue, outbox, identity, transactions, marketplace_options(config)),
      ratings(db, outbox, identity, transactions),
      reports(db, outbox, identity),
      realtime(db, identity, realtime_options(config)),
      files(storage::local_folder(config.storage_dir)),
      chat(db, outbox, identity, realtime, *files, chat_options(config)),
      push(notifications::make_push_provider(notifications_options(config))),
      email(notifications::make_email_provider(notifications_options(config))),
      notifications(db, queue, identity, realtime, *push, *email),
      ledger(db, queue, outbox),
      payments(db, queue, outbox, identity, ledger, transactions, payments_options(config)),
      catalog(db, queue, outbox, identity, *files, catalog_options(config)),
      orders(db, outbox, identity, transactions, catalog, payments),
      search(db, queue, outbox, catalog, identity, {std::chrono::milliseconds(config.list_cache_ms)}),
      idempotency(db),
      sms_(sms) {
  identity.start();
  identity.use_sms(sms_);
  identity.use_outbox(outbox);
  if (!config.oidc_config.empty()) {
    std::ifstream file(config.oidc_config);
    std::stringstream text;
    text << file.rdbuf();
    auto parsed = json::parse(text.str(), nullptr, false);
    if (parsed.is_discarded()) throw std::invalid_argument("--oidc-config is not valid JSON: " + config.oidc_config);
    identity.use_oidc(identity::OidcVerifier::from_config(parsed));
  }
  register_all_actions(actions, &payments, &orders);
  processes.load(db, actions, config.processes_dir);
  if (!processes.latest(config.deal_process))
    throw transactions::ProcessError("--deal-process: no process named \"" + config.deal_process + "\" is loaded");
  transactions.register_jobs();
  marketplace.register_jobs();
  ratings.extend_profiles();
  marketplace::register_policies(policy);
  reports::register_policies(policy);
  reports.add_target("user", [](db::Tx& tx, const std::string& id) -> std::optional<std::string> {
    if (!identity::Identity::exists(tx, id)) return std::nullopt;
    return id;
  });
  for (const char* type : {"request", "offer"})
    reports.add_target(type, [this, type](db::Tx& tx, const std::string& id) { return marketplace.owner_of(tx, type, id); });
  // A changed product's cached page goes on every node.
  realtime.on_node_message(catalog::Catalog::kProductChanged, [this](const json& data) {
    if (data.is_string()) catalog.forget(data.get<std::string>());
  });
  realtime.on_node_message(catalog::Catalog::kSellerChanged, [this](const json& data) {
    if (data.is_string()) catalog.forget_seller(data.get<std::string>());
  });
  realtime.on_node_message(catalog::Catalog::kCatalogChanged, [this](const json&) { catalog.forget_all(); });
  realtime.start();
  route_to_user_channels(outbox);
  chat.use_for_actions();
  chat.register_policies();
  open_conversations_about_subjects();
  reports.add_target("message", [this](db::Tx& tx, const std::string& id) { return chat.sender_of(tx, id); });
  notifications.register_jobs();
  ledger.register_jobs();
  payments.register_jobs();
  // Commission follows the category of the request a deal answered, or of
  // an order's largest line.
  payments.use_category_of([this](db::Tx& tx, const transactions::Record& txn) -> std::optional<std::string> {
    if (txn.kind == "order") return orders.category_of(tx, txn.id);
    std::optional<db::Row> r;
    if (txn.subject_type == "offer")
      r = tx.query_one("SELECT r.category FROM offers o JOIN requests r ON r.id = o.request_id WHERE o.id = $1",
                       {txn.subject_id});
    else if (txn.subject_type == "request")
      r = tx.query_one("SELECT category FROM requests WHERE id = $1", {txn.subject_id});
    if (!r) return std::nullopt;
    return r->text("category");
  });
  catalog.register_jobs();
  catalog::register_policies(policy);
  for (const char* type : {"product", "review"})
    reports.add_target(type, [this, type](db::Tx& tx, const std::string& id) { return catalog.owner_of(tx, type, id); });
  catalog.use_purchases([this](db::Tx& tx, const std::string& buyer, const std::string& product) {
    return orders.purchased(tx, buyer, product);
  });
  orders.follow_payments(outbox);
  orders::register_policies(policy);
  catalog.use_bus([this](const std::string& topic, const std::string& id) { realtime.send_node_message(topic, id); });
  search.register_jobs();
  tell_people(outbox);
}

// Who hears of what (ARCHITECTURE.md: consumers of the outbox). Each notice
// names its template types, most specific first; the payload supplies the
// variables and the ids the client needs to open the right screen.
void Modules::tell_people(jobs::Outbox& outbox) {
  using notifications::Notice;
  // One notice for the user the payload names under `to`, of the type of
  // the last template type (the general one).
  auto tell = [](const json& e, const std::string& to, std::vector<std::string> types,
                 const std::vector<std::string>& ids) {
    std::vector<Notice> out;
    if (!e.contains(to) || !e[to].is_string()) return out;
    Notice n;
    n.user_id = e[to];
    n.type = types.back();
    n.types = std::move(types);
    n.vars = e;
    for (const auto& key : ids)
      if (e.contains(key) && e[key].is_string()) n.data[key] = e[key];
    out.push_back(std::move(n));
    return out;
  };
  const std::vector<std::string> offer_ids = {"offer_id", "request_id", "deal_id"};
  const std::vector<std::tuple<std::string, std::string>> simple = {
      {"offer.created", "buyer_id"}, {"offer.withdrawn", "buyer_id"}, {"offer.expired", "seller_id"}};
  for (const auto& [type, to] : simple)
    notifications.on(outbox, type, [tell, offer_ids, type = type, to = to](const json& e) { return tell(e, to, {type}, offer_ids); });
  // The accepted seller hears once, whether this or the deal's own "created"
  // notice comes first: both carry the deal's key.
  notifications.on(outbox, "offer.accepted", [tell, offer_ids](const json& e) {
    auto out = tell(e, "seller_id", {"offer.accepted"}, offer_ids);
    for (auto& n : out) n.dedupe_key = e.value("deal_id", "") + ":created";
    return out;
  });
  // (Not the winning deal's id: it is not theirs to open.)
  notifications.on(outbox, "offer.rejected", [tell](const json& e) {
    return tell(e, "seller_id", {"offer.rejected." + e.value("reason", ""), "offer.rejected"}, {"offer_id", "request_id"});
  });
  // The buyer, and each seller whose pending offer lapsed with the request.
  notifications.on(outbox, "request.expired", [tell](const json& e) {
    auto out = tell(e, "buyer_id", {"request.expired"}, {"request_id"});
    for (const auto& offer : e.value("offers", json::array())) {
      json about = e;
      about.erase("offers");
      about.update(offer);
      for (auto& n : tell(about, "seller_id", {"offer.expired"}, {"offer_id", "request_id"})) {
        n.dedupe_key = e.value("request_id", "") + ":expired:" + about.value("offer_id", "");
        out.push_back(std::move(n));
      }
    }
    return out;
  });
  // An operator took the buyer's request down.
  notifications.on(outbox, "request.cancelled", [tell](const json& e) {
    if (e.value("by", "") != "operator") return std::vector<Notice>{};
    return tell(e, "buyer_id", {"request.cancelled"}, {"request_id"});
  });
  // Money that did not go where it was meant to.
  for (const auto& [type, to] : std::vector<std::pair<std::string, std::string>>{
           {"payout.paid", "user_id"}, {"payout.failed", "user_id"}, {"payment.failed", "payer_id"},
           {"payment.flagged", "payer_id"}})
    notifications.on(outbox, type, [tell, type = type, to = to](const json& e) {
      return tell(e, to, {type}, {"payout_id", "payment_id", "transaction_id"});
    });
  notifications.on(outbox, "rating.created",
                   [tell](const json& e) { return tell(e, "ratee_id", {"rating.created"}, {"rating_id", "transaction_id"}); });
  notifications.on(outbox, "report.decided", [tell](const json& e) {
    std::string decision = e.value("decision", "");
    if (decision != "warn" && decision != "suspend") return std::vector<Notice>{};
    return tell(e, "owner_id", {"report.decided." + decision, "report.decided"}, {"report_id"});
  });
  // Steps of transactions: the process's notify action names the parties.
  notifications.on(outbox, "notification.requested", [](const json& e) {
    std::vector<Notice> out;
    std::string kind = e.value("kind", "deal"), txn = e.value("transaction_id", "");
    for (const auto& recipient : e.value("recipients", json::array())) {
      if (!recipient.is_string()) continue;
      Notice n;
      n.user_id = recipient;
      n.types = {e.value("template", kind + "." + e.value("transition", "")), "transaction.updated"};
      n.category = kind == "order" ? "orders" : "deals";
      n.vars = e;
      n.data = {{"transaction_id", txn}, {"kind", kind}, {"transition", e.value("transition", "")}};
      if (e.value("transition", "") == "created") n.dedupe_key = txn + ":created";
      out.push_back(std::move(n));
    }
    return out;
  });
  // A chat line: a push to each participant who has no socket open (seed 000).
  // System lines repeat what the transaction's own notices say.
  notifications.on(outbox, "message.created", [](const json& e) {
    std::vector<Notice> out;
    if (!e.contains("sender_id") || !e["sender_id"].is_string()) return out;
    std::string conversation = e.value("conversation_id", "");
    bool text = !e.value("preview", "").empty();
    for (const auto& recipient : e.value("recipients", json::array())) {
      if (!recipient.is_string()) continue;
      Notice n;
      n.user_id = recipient;
      n.type = "message.created";
      n.types = {text ? "message.created" : "message.created.attachment"};
      n.vars = e;
      n.data = {{"conversation_id", conversation}, {"message_id", e.value("message_id", "")}};
      n.only_when_away = true;
      n.presence_channel = "presence-conversation." + conversation;
      out.push_back(std::move(n));
    }
    return out;
  });
}

// What people may talk about, and with whom.
void Modules::open_conversations_about_subjects() {
  using Participants = std::optional<std::vector<chat::Participant>>;
  // An offer: its seller and the request's buyer (seed 000).
  chat.add_subject("offer", [](db::Tx& tx, const identity::Principal&, const std::string& id) -> Participants {
    auto r = tx.query_one("SELECT o.seller_id, r.buyer_id FROM offers o JOIN requests r ON r.id = o.request_id WHERE o.id = $1",
                          {id});
    if (!r) return std::nullopt;
    return std::vector<chat::Participant>{{r->text("buyer_id"), "buyer"}, {r->text("seller_id"), "seller"}};
  });
  // A transaction (a deal, an order): its two parties.
  chat.add_subject("transaction", [this](db::Tx& tx, const identity::Principal&, const std::string& id) -> Participants {
    auto txn = transactions.load(tx, id);
    if (!txn) return std::nullopt;
    return std::vector<chat::Participant>{{txn->buyer_id, "buyer"}, {txn->seller_id, "seller"}};
  });
  // An open request: a seller's question to its buyer before offering, one
  // conversation per seller.
  chat.add_subject("request", [](db::Tx& tx, const identity::Principal& who, const std::string& id) -> Participants {
    auto r = tx.query_one("SELECT buyer_id, status FROM requests WHERE id = $1", {id});
    if (!r || r->text("buyer_id") == who.user_id || r->text("status") != "active") return std::nullopt;
    if (!who.has_role("seller"))
      throw ApiError(403, "seller_not_approved", "Only approved sellers ask about requests. Apply at /api/v1/seller-profiles.");
    return std::vector<chat::Participant>{{r->text("buyer_id"), "buyer"}, {who.user_id, "seller"}};
  });
}

// Domain events that reach the people they concern as they happen, on
// their own channel private-user.{id}, named as the event is.
void Modules::route_to_user_channels(jobs::Outbox& outbox) {
  // The event, named `name`, on the channel of each user the payload names
  // under `keys` (each user once).
  auto to_users = [](const json& event, const std::vector<std::string>& keys, const std::string& name) {
    std::vector<realtime::Delivery> out;
    for (const auto& key : keys) {
      if (!event.contains(key) || !event[key].is_string()) continue;
      std::string channel = "private-user." + event[key].get<std::string>();
      if (std::none_of(out.begin(), out.end(), [&](const auto& d) { return d.channel == channel; }))
        out.push_back({channel, name, event});
    }
    return out;
  };
  const std::vector<std::pair<std::string, std::vector<std::string>>> table = {
      {"offer.created", {"buyer_id"}},     {"offer.withdrawn", {"buyer_id"}},
      {"offer.accepted", {"seller_id", "buyer_id"}}, {"offer.rejected", {"seller_id"}},
      {"offer.expired", {"seller_id"}},    {"request.closed", {"buyer_id"}},
      {"request.expired", {"buyer_id"}},   {"request.cancelled", {"buyer_id"}},
      {"rating.created", {"ratee_id"}},
  };
  for (const auto& type : {"payment.succeeded", "payment.failed", "payment.flagged"})
    realtime.route(outbox, type, [to_users](const json& e) { return to_users(e, {"payer_id"}, "payment.status_updated"); });
  for (const auto& type : {"payout.requested", "payout.paid", "payout.failed"})
    realtime.route(outbox, type, [to_users](const json& e) { return to_users(e, {"user_id"}, "payout.status_updated"); });
  for (const std::string type : {"dispute.opened", "dispute.resolved"})
    realtime.route(outbox, type, [to_users, type](const json& e) { return to_users(e, {"buyer_id", "seller_id"}, type); });
  for (const auto& [type, keys] : table)
    realtime.route(outbox, type, [to_users, type = type, keys = keys](const json& e) { return to_users(e, keys, type); });
  // Deal transitions (every process's transactions): both parties, as
  // "<kind>.<transition>" (deal.created, deal.completed …).
  for (const char* family : {"deal.*", "order.*"})
    realtime.route(outbox, family, [to_users](const json& e) {
      return to_users(e, {"buyer_id", "seller_id"}, e.value("kind", "deal") + "." + e.value("transition", "created"));
    });
}

void Modules::register_routes(api::Router& router, BlockingPool& blocking, BlockingPool& cpu) {
  identity::register_routes(router, identity, blocking, cpu);
  identity::register_moderation_routes(router, identity, policy, blocking, &sms_);
  transactions::register_routes(router, transactions, identity, blocking, &idempotency);
  marketplace::register_routes(router, marketplace, identity, policy, blocking);
  ratings::register_routes(router, ratings, identity, blocking);
  reports::register_routes(router, reports, identity, policy, blocking);
  realtime::register_routes(router, realtime, identity, blocking);
  chat::register_routes(router, chat, identity, blocking);
  notifications::register_routes(router, notifications, identity, blocking);
  ledger::register_routes(router, ledger, identity, blocking);
  payments::register_routes(router, payments, identity, idempotency, blocking);
  catalog::register_routes(router, catalog, identity, policy, blocking);
  orders::register_routes(router, orders, identity, policy, idempotency, blocking);
  search::register_routes(router, search, blocking);
}

}  // namespace souq::app
