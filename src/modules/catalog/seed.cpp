// A seeded catalogue, for demos and benchmarks (souq seed --products N): a
// two-level category tree with typed attributes, approved sellers, and
// products with SKUs spread over the last year, in batches of multi-row
// inserts.
#include <random>

#include "core/id.hpp"
#include "core/time.hpp"
#include "modules/catalog/module.hpp"

namespace souq::catalog {
namespace {

struct Branch {
  const char* name;
  const char* slug;
  std::vector<std::pair<const char*, const char*>> children;  // name, slug
  std::vector<const char*> brands, things;
};

const std::vector<Branch>& branches() {
  static const std::vector<Branch> b = {
      {"Electronics", "electronics", {{"Phones", "phones"}, {"Laptops", "laptops"}, {"Headphones", "headphones"}, {"Cameras", "cameras"}},
       {"Samsung", "Apple", "Sony", "Lenovo", "Xiaomi", "Canon"}, {"smartphone", "laptop", "headphones", "camera", "charger", "tablet"}},
      {"Home", "home", {{"Furniture", "furniture"}, {"Kitchen", "kitchen"}, {"Lighting", "lighting"}, {"Decor", "decor"}},
       {"Ikea", "Tefal", "Philips", "Moulinex", "Bosch"}, {"desk", "chair", "kettle", "lamp", "rug", "blender"}},
      {"Fashion", "fashion", {{"Men", "men"}, {"Women", "women"}, {"Shoes", "shoes"}, {"Watches", "watches"}},
       {"Adidas", "Nike", "Zara", "Casio", "Puma"}, {"jacket", "sneakers", "dress", "watch", "shirt", "scarf"}},
      {"Sports", "sports", {{"Cycling", "cycling"}, {"Fitness", "fitness"}, {"Outdoor", "outdoor"}},
       {"Decathlon", "Trek", "Garmin", "Wilson"}, {"bike", "treadmill", "tent", "racket", "dumbbells", "backpack"}},
      {"Books", "books", {{"Fiction", "fiction"}, {"Science", "science"}, {"Children", "children"}},
       {"Penguin", "Dar El Shorouk", "Oxford"}, {"novel", "textbook", "atlas", "storybook", "dictionary"}},
  };
  return b;
}

constexpr const char* kCities[] = {"Cairo", "Alexandria", "Giza", "Mansoura", "Tanta", "Luxor", "Aswan", "Suez"};
constexpr double kCityPoints[][2] = {{30.0444, 31.2357}, {31.2001, 29.9187}, {30.0131, 31.2089}, {31.0409, 31.3785},
                                     {30.7865, 31.0004}, {25.6872, 32.6396}, {24.0889, 32.8998}, {29.9668, 32.5498}};
constexpr const char* kColors[] = {"black", "white", "red", "blue", "green", "silver"};
constexpr const char* kAdjectives[] = {"Wireless", "Compact", "Premium", "Classic", "Portable", "Smart", "Vintage", "Pro"};
constexpr const char* kConditions[] = {"new", "new", "new", "used", "refurbished"};

}  // namespace

void Catalog::seed(const SeedOptions& o, const std::function<void(int64_t)>& progress) {
  std::mt19937_64 rng(o.random_seed);
  auto pick = [&](auto n) { return std::uniform_int_distribution<int64_t>(0, int64_t(n) - 1)(rng); };
  std::string stamp = now_text();
  const json color = json::array({{{"key", "color"}, {"type", "enum"}, {"label", "Colour"},
                                   {"values", json(std::vector<std::string>(std::begin(kColors), std::end(kColors)))},
                                   {"required", false}, {"facet", true}}});
  // Categories (kept if they exist: the slugs are unique) and sellers.
  struct Leaf {
    std::string id;
    const Branch* branch;
  };
  std::vector<Leaf> leaves;
  std::vector<std::string> sellers;
  db_.write([&](db::Tx& tx) {
    int position = 0;
    for (const auto& b : branches()) {
      auto root = tx.query_one("SELECT id, path FROM categories WHERE slug = $1", {std::string(b.slug)});
      std::string root_id = root ? root->text("id") : new_id("cat");
      std::string root_path = root ? root->text("path") : "/" + root_id + "/";
      if (!root)
        tx.exec("INSERT INTO categories (id, parent_id, slug, name, position, path, depth, attributes, created_at, updated_at)"
                " VALUES ($1, NULL, $2, $3, $4, $5, 0, $6, $7, $7)",
                {root_id, b.slug, b.name, int64_t(position), root_path, dump_json(color), stamp});
      ++position;
      int child_position = 0;
      for (const auto& [name, slug] : b.children) {
        auto child = tx.query_one("SELECT id FROM categories WHERE slug = $1", {std::string(slug)});
        std::string id = child ? child->text("id") : new_id("cat");
        if (!child)
          tx.exec("INSERT INTO categories (id, parent_id, slug, name, position, path, depth, attributes, created_at,"
                  " updated_at) VALUES ($1, $2, $3, $4, $5, $6, 1, '[]', $7, $7)",
                  {id, root_id, slug, name, int64_t(child_position), root_path + id + "/", stamp});
        ++child_position;
        leaves.push_back({id, &b});
      }
    }
    sellers = identity_.seed_accounts(tx, o.sellers, true, "Shop");
  });

  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now().time_since_epoch()).count();
  const int64_t span_ms = int64_t(365) * 86400'000;
  const int64_t batch = 2000;
  for (int64_t first = 0; first < o.products; first += batch) {
    db_.write([&](db::Tx& tx) {
      std::vector<db::Value> products, skus;
      int64_t last = std::min(o.products, first + batch);
      for (int64_t i = first; i < last; ++i) {
        int64_t created_ms = now_ms - span_ms + span_ms * i / std::max<int64_t>(1, o.products);
        std::string id = new_id_at("prod", created_ms);
        std::string created = format_time(TimePoint{std::chrono::milliseconds(created_ms)});
        const Leaf& leaf = leaves[size_t(pick(leaves.size()))];
        const Branch& b = *leaf.branch;
        std::string brand = b.brands[size_t(pick(b.brands.size()))];
        std::string thing = b.things[size_t(pick(b.things.size()))];
        std::string title = std::string(kAdjectives[pick(std::size(kAdjectives))]) + " " + brand + " " + thing + " " +
                            std::to_string(100 + pick(900));
        size_t city = size_t(pick(std::size(kCities)));
        double lat = kCityPoints[city][0] + (double(pick(2001)) - 1000) / 20000.0;
        double lng = kCityPoints[city][1] + (double(pick(2001)) - 1000) / 20000.0;
        int64_t base = (5 + pick(2000)) * 100;
        int64_t lo = base, hi = base;
        std::string product_color = kColors[pick(std::size(kColors))];
        for (int k = 0; k < o.skus_per_product; ++k) {
          int64_t price = base + k * 500;
          hi = std::max(hi, price);
          for (db::Value v : {db::Value(new_id_at("sku", created_ms)), db::Value(id), db::Value(price), db::Value("EGP"),
                              db::Value(pick(50)), db::Value(dump_json({{"size", k == 0 ? "standard" : "size " + std::to_string(k + 1)}})),
                              db::Value(int64_t(k)), db::Value(created), db::Value(created)})
            skus.push_back(std::move(v));
        }
        for (db::Value v :
             {db::Value(id), db::Value(sellers[size_t(pick(sellers.size()))]), db::Value(title),
              db::Value("A " + thing + " by " + brand + ", " + product_color + ", ships from " + kCities[city] + "."),
              db::Value(brand), db::Value(leaf.id), db::Value(dump_json({{"color", product_color}})),
              db::Value(kConditions[pick(std::size(kConditions))]), db::Value(kCities[city]), db::Value(lat), db::Value(lng),
              db::Value(lo), db::Value(hi), db::Value(created), db::Value(created), db::Value(created),
              db::Value("active"), db::Value("EGP")})
          products.push_back(std::move(v));
      }
      db::bulk_insert(tx,
                      "products (id, seller_id, title, description, brand, category_id, attributes, condition, city, lat,"
                      " lng, price_min, price_max, created_at, updated_at, published_at, status, currency)",
                      18, products);
      db::bulk_insert(tx, "skus (id, product_id, price, currency, stock, attributes, position, created_at, updated_at)", 9,
                      skus);
    });
    progress(std::min(o.products, first + batch));
  }
}

}  // namespace souq::catalog
