// GET /api/v1/search: read and check the query string (every bad parameter
// named at once, 422 validation_failed), then ask the service.
#include <charconv>
#include <cmath>
#include <set>

#include "core/id.hpp"
#include "core/money.hpp"
#include "core/utf8.hpp"
#include "core/validation.hpp"
#include "http/cached_list.hpp"
#include "http/paging.hpp"
#include "http/response.hpp"
#include "modules/search/module.hpp"
#include "modules/search/text.hpp"

namespace souq::search {

using api::Request;
using api::Response;

namespace {

constexpr int64_t kMaxAmount = 1'000'000'000'000'000;

bool is_key(const std::string& k) {
  if (k.empty() || k.size() > 40) return false;
  for (char c : k)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

// The query string, each parameter with all its values (repeated, or
// comma-separated where a list is allowed), and the problems found.
class Params {
 public:
  explicit Params(const Request& req) {
    for (auto& [k, v] : api::parse_form(req.query)) values_[k].push_back(std::move(v));
  }

  const std::map<std::string, std::vector<std::string>>& all() const { return values_; }
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  void fail(const std::string& name, const std::string& why) { errors_[name] = why; }
  const json& errors() const { return errors_; }

  // The one value of a parameter.
  std::optional<std::string> one(const std::string& name) {
    auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    if (it->second.size() > 1) {
      fail(name, "is given more than once");
      return std::nullopt;
    }
    return it->second.front();
  }

  // Values of a list parameter: repeated or comma-separated, each 1 to 80 characters, at most 20.
  std::vector<std::string> list(const std::string& name) {
    std::vector<std::string> out;
    auto it = values_.find(name);
    if (it == values_.end()) return out;
    for (const auto& value : it->second) {
      size_t start = 0;
      while (start <= value.size()) {
        size_t comma = value.find(',', start);
        if (comma == std::string::npos) comma = value.size();
        std::string item = value.substr(start, comma - start);
        while (!item.empty() && item.front() == ' ') item.erase(0, 1);
        while (!item.empty() && item.back() == ' ') item.pop_back();
        if (!item.empty()) out.push_back(item);
        start = comma + 1;
      }
    }
    if (out.empty()) fail(name, "names no value");
    else if (out.size() > 20) fail(name, "names at most 20 values");
    else
      for (const auto& item : out)
        if (utf8::length(item) > 80) fail(name, "values are at most 80 characters");
    return out;
  }

  std::optional<int64_t> integer(const std::string& name, int64_t min, int64_t max) {
    auto text = one(name);
    if (!text) return std::nullopt;
    int64_t n = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
    if (ec == std::errc() && end == text->data() + text->size() && n >= min && n <= max) return n;
    fail(name, "must be a whole number from " + std::to_string(min) + " to " + std::to_string(max));
    return std::nullopt;
  }

  std::optional<double> number(const std::string& name, double min, double max) {
    auto text = one(name);
    if (!text) return std::nullopt;
    try {
      size_t used = 0;
      double n = std::stod(*text, &used);
      if (used == text->size() && std::isfinite(n) && n >= min && n <= max) return n;
    } catch (const std::exception&) {
    }
    fail(name, "must be a number from " + json(min).dump() + " to " + json(max).dump());
    return std::nullopt;
  }

 private:
  std::map<std::string, std::vector<std::string>> values_;
  json errors_ = json::object();
};

const std::set<std::string> kCommon = {"type", "q", "sort", "limit", "cursor"};
const std::set<std::string> kProductOnly = {"category", "brand",  "condition", "seller", "currency",
                                            "min_price", "max_price", "lat", "lng", "radius_km",
                                            "in_stock", "facets"};

std::string text_query(Params& p) {
  auto q = p.one("q");
  if (!q || q->empty()) return "";
  if (utf8::length(*q) > 200) p.fail("q", "must be at most 200 characters");
  else if (words(*q).empty()) p.fail("q", "must hold a word (letters or digits)");
  else if (words(*q).size() > 10) p.fail("q", "must be at most 10 words");
  return *q;
}

std::string sort_of(Params& p, const std::set<std::string>& allowed, const std::string& q, const char* names) {
  auto sort = p.one("sort");
  if (!sort) return "";
  if (!allowed.count(*sort)) p.fail("sort", std::string("must be ") + names);
  else if (*sort == "relevance" && q.empty()) p.fail("sort", "relevance needs q");
  return *sort;
}

ProductQuery product_query(Params& p) {
  ProductQuery q;
  q.q = text_query(p);
  q.sort = sort_of(p, {"relevance", "newest", "price_asc", "price_desc", "rating"}, q.q,
                   "relevance, newest, price_asc, price_desc or rating");
  if (auto category = p.one("category")) {
    if (!is_slug(*category) && !is_id(*category, "cat")) p.fail("category", "must be a category slug or id");
    else q.category = *category;
  }
  if (p.has("brand")) q.brands = p.list("brand");
  if (p.has("city")) q.cities = p.list("city");
  if (p.has("condition")) {
    q.conditions = p.list("condition");
    for (const auto& c : q.conditions)
      if (c != "new" && c != "used" && c != "refurbished") p.fail("condition", "must be new, used or refurbished");
  }
  if (auto seller = p.one("seller")) {
    if (!is_id(*seller, "usr")) p.fail("seller", "must be a user id");
    else q.seller_id = *seller;
  }
  if (auto currency = p.one("currency")) {
    if (!Currency::find(*currency)) p.fail("currency", "must be an ISO 4217 code");
    else q.currency = *currency;
  }
  q.min_price = p.integer("min_price", 0, kMaxAmount);
  q.max_price = p.integer("max_price", 0, kMaxAmount);
  if ((p.has("min_price") || p.has("max_price")) && !p.has("currency"))
    p.fail("currency", "is required with a price filter (prices are in its minor units)");
  if (q.min_price && q.max_price && *q.min_price > *q.max_price) p.fail("max_price", "must not be below min_price");
  q.lat = p.number("lat", -90, 90);
  q.lng = p.number("lng", -180, 180);
  q.radius_km = p.number("radius_km", 0.1, 20000);
  if ((p.has("lat") || p.has("lng") || p.has("radius_km")) && !(p.has("lat") && p.has("lng") && p.has("radius_km")))
    p.fail("radius_km", "lat, lng and radius_km go together");
  if (auto in_stock = p.one("in_stock")) {
    if (*in_stock != "true" && *in_stock != "false") p.fail("in_stock", "must be true or false");
    q.in_stock = *in_stock == "true";
  }
  if (p.has("facets")) {
    auto text = p.one("facets");
    std::vector<std::string> keys;
    if (text && !text->empty()) keys = p.list("facets");
    for (const auto& k : keys)
      if (!is_key(k)) p.fail("facets", "names attribute keys (lower-case letters, digits and _)");
    if (keys.size() > 10) p.fail("facets", "names at most 10 attributes");
    q.facets = keys;
  }
  for (const auto& [name, values] : p.all()) {
    if (name.rfind("attr.", 0) != 0) continue;
    std::string key = name.substr(5);
    if (!is_key(key)) {
      p.fail(name, "attribute keys are lower-case letters, digits and _");
      continue;
    }
    q.attributes[key] = p.list(name);
  }
  if (q.attributes.size() > 10) p.fail("attr", "at most 10 attributes");
  return q;
}

SellerQuery seller_query(Params& p) {
  SellerQuery q;
  q.q = text_query(p);
  q.sort = sort_of(p, {"relevance", "newest"}, q.q, "relevance or newest");
  if (p.has("city")) q.cities = p.list("city");
  for (const auto& [name, values] : p.all())
    if (kProductOnly.count(name) || name.rfind("attr.", 0) == 0) p.fail(name, "applies to type=products only");
  return q;
}

}  // namespace

void register_routes(api::Router& router, Search& search, BlockingPool& blocking) {
  // ?type=products|sellers&q=&category=&brand=&condition=&city=&seller=&currency=&min_price=&max_price=
  // &attr.<key>=&lat=&lng=&radius_km=&in_stock=&facets=&sort=&limit=&cursor=
  router.get("/api/v1/search", [&](Request& req) -> awaitable<Response> {
    Params p(req);
    for (const auto& [name, values] : p.all())
      if (!kCommon.count(name) && !kProductOnly.count(name) && name != "city" && name.rfind("attr.", 0) != 0)
        p.fail(name, "is not a search parameter");
    std::string type = p.one("type").value_or("products");
    if (type != "products" && type != "sellers") p.fail("type", "must be products or sellers");
    int limit = api::page_limit(req, 20, 100);
    auto cursor = api::page_cursor_json(req);
    std::optional<ProductQuery> products;
    std::optional<SellerQuery> sellers;
    if (type == "sellers") sellers = seller_query(p);
    else products = product_query(p);
    if (!p.errors().empty()) throw ApiError::validation(p.errors());
    if (products) {
      products->limit = limit;
      products->cursor = cursor;
    } else {
      sellers->limit = limit;
      sellers->cursor = cursor;
    }
    // Results are the same for every anonymous caller: kept briefly.
    auto make = [&] {
      return blocking.run([&] {
        Page page = products ? search.products(*products) : search.sellers(*sellers);
        return std::pair<json, json>(std::move(page.data), std::move(page.next_cursor));
      });
    };
    co_return co_await api::cached_list(req, search.pages(), make);
  });
}

}  // namespace souq::search
