// A seeded marketplace, for demos and benchmarks: buyers and approved
// sellers, requests spread over the last 30 days in a few categories and
// cities, and offers on them, with offer counts exact and expiry scheduled.
#include <random>

#include "core/id.hpp"
#include "core/time.hpp"
#include "modules/marketplace/module.hpp"

namespace souq::marketplace {

namespace {
constexpr const char* kCategories[] = {"phones", "laptops", "tablets", "cameras", "furniture", "appliances", "bikes",
                                       "cars", "books", "clothes", "toys", "tools", "garden", "music", "sports",
                                       "watches", "jewelry", "art", "games", "services"};
struct City {
  const char* name;
  double lat, lng;
};
constexpr City kCities[] = {{"Cairo", 30.0444, 31.2357},      {"Alexandria", 31.2001, 29.9187}, {"Giza", 30.0131, 31.2089},
                            {"Mansoura", 31.0409, 31.3785},   {"Tanta", 30.7865, 31.0004},      {"Luxor", 25.6872, 32.6396},
                            {"Aswan", 24.0889, 32.8998},      {"Suez", 29.9668, 32.5498},       {"Ismailia", 30.5965, 32.2715},
                            {"Hurghada", 27.2579, 33.8116}};
constexpr const char* kThings[] = {"iPhone 13", "Galaxy S22", "ThinkPad X1", "MacBook Air", "iPad mini", "Canon R6",
                                   "oak desk", "fridge", "road bike", "Corolla 2015", "textbooks", "winter coat",
                                   "LEGO set", "drill", "lawn mower", "oud", "treadmill", "Casio watch", "gold ring",
                                   "oil painting", "PS5", "plumber visit"};
}  // namespace

void Marketplace::seed(const SeedOptions& o, const std::function<void(int64_t requests, int64_t offers)>& progress) {
  std::mt19937_64 rng(o.random_seed);
  auto pick = [&](auto n) { return std::uniform_int_distribution<int64_t>(0, int64_t(n) - 1)(rng); };
  std::vector<std::string> buyers, sellers;
  db_.write([&](db::Tx& tx) {
    buyers = identity_.seed_accounts(tx, o.buyers, false, "Buyer");
    sellers = identity_.seed_accounts(tx, o.sellers, true, "Seller");
  });

  // Which sellers offer on which request: about offers/requests each, never
  // the same seller twice on one request.
  std::vector<int> per_request(size_t(o.requests), 0);
  for (int64_t i = 0; i < o.offers; ++i) per_request[size_t(pick(o.requests))]++;
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now().time_since_epoch()).count();
  const int64_t span_ms = int64_t(30) * 86400'000;
  const int64_t batch = 5000;
  int64_t offers_done = 0;
  for (int64_t first = 0; first < o.requests; first += batch) {
    db_.write([&](db::Tx& tx) {
      std::vector<db::Value> requests, offers;
      int64_t last = std::min(o.requests, first + batch);
      for (int64_t i = first; i < last; ++i) {
        int64_t created_ms = now_ms - span_ms + span_ms * i / std::max<int64_t>(1, o.requests);
        int64_t expires_ms = created_ms + (7 + pick(54)) * 86400'000;
        TimePoint created{std::chrono::milliseconds(created_ms)}, expires{std::chrono::milliseconds(expires_ms)};
        std::string id = new_id_at("req", created_ms);
        const City& city = kCities[pick(std::size(kCities))];
        std::string thing = kThings[pick(std::size(kThings))];
        int64_t budget_min = (1 + pick(200)) * 10'000, budget_max = budget_min * (2 + pick(3));
        bool active = expires_ms > now_ms;
        std::string title = "Looking for a " + thing, description = "A " + thing + " in good condition, " + city.name;
        int count = per_request[size_t(i)];
        std::vector<int64_t> chosen;
        while (int(chosen.size()) < std::min<int>(count, o.sellers)) {
          int64_t s = pick(o.sellers);
          if (std::find(chosen.begin(), chosen.end(), s) == chosen.end()) chosen.push_back(s);
        }
        for (int64_t s : chosen) {
          int64_t offered_ms = created_ms + pick(std::max<int64_t>(1, std::min(expires_ms, now_ms) - created_ms));
          std::string stamp = format_time(TimePoint{std::chrono::milliseconds(offered_ms)});
          for (db::Value v : {db::Value(new_id_at("ofr", offered_ms)), db::Value(id), db::Value(sellers[size_t(s)]),
                              db::Value(budget_min + pick(budget_max - budget_min + 1)), db::Value("EGP"),
                              db::Value("Available now"), db::Value(1 + pick(14)), db::Value(format_time(expires)),
                              db::Value(active ? "pending" : "expired"),
                              active ? db::Value() : db::Value("request_expired"), db::Value(stamp), db::Value(stamp)})
            offers.push_back(std::move(v));
        }
        double lat = city.lat + (double(pick(2001)) - 1000) / 20000.0, lng = city.lng + (double(pick(2001)) - 1000) / 20000.0;
        for (db::Value v : {db::Value(id), db::Value(buyers[size_t(pick(o.buyers))]), db::Value(title),
                            db::Value(description), db::Value(kCategories[pick(std::size(kCategories))]),
                            db::Value(1 + pick(3)), db::Value(budget_min), db::Value(budget_max), db::Value("EGP"),
                            db::Value(city.name), db::Value(lat), db::Value(lng), db::Value("[]"),
                            db::Value(options_.deal_process), db::Value(active ? "active" : "expired"),
                            db::Value(int64_t(chosen.size())), db::Value(lower_text(title + "\n" + description)),
                            db::Value(format_time(expires)), db::Value(format_time(created)), db::Value(format_time(created)),
                            active ? db::Value() : db::Value(format_time(expires))})
          requests.push_back(std::move(v));
        if (active) schedule_request_expiry(tx, id, format_time(expires), "");
        offers_done += int64_t(chosen.size());
      }
      db::bulk_insert(tx,
                      "requests (id, buyer_id, title, description, category, quantity, budget_min, budget_max, currency,"
                      " city, lat, lng, images, process, status, offer_count, search_text, expires_at, created_at,"
                      " updated_at, closed_at)",
                      21, requests);
      db::bulk_insert(tx,
                      "offers (id, request_id, seller_id, price, currency, message, delivery_days, valid_until, status,"
                      " status_reason, created_at, updated_at)",
                      12, offers);
      progress(last, offers_done);
    });
  }
}

}  // namespace souq::marketplace
