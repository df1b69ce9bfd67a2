// Keeping the index: a document is re-read from its owner and written whole
// (or taken out), under a per-document lock, so events may come twice, late
// or out of order and the index still ends with the current document.
#include <algorithm>
#include <set>

#include "core/log.hpp"
#include "core/time.hpp"
#include "modules/search/counts_cache.hpp"
#include "modules/search/module.hpp"
#include "modules/search/tables.hpp"
#include "modules/search/text.hpp"

namespace souq::search {

// Category summaries {id, slug, name}, read once per transaction.
struct Search::Categories {
  catalog::Catalog& catalog;
  std::map<std::string, json> seen;

  json summary(db::Tx& tx, const std::string& id) {
    if (auto it = seen.find(id); it != seen.end()) return it->second;
    auto c = catalog.find_category(tx, id);
    json s = c ? json{{"id", (*c)["id"]}, {"slug", (*c)["slug"]}, {"name", (*c)["name"]}} : json(nullptr);
    seen[id] = s;
    return s;
  }
};

namespace {

std::vector<std::string> path_ids(const std::string& path) {
  std::vector<std::string> ids;
  for (size_t s = 1, e; s < path.size() && (e = path.find('/', s)) != std::string::npos; s = e + 1)
    ids.push_back(path.substr(s, e - s));
  return ids;
}

std::string text_of(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_boolean()) return j.get<bool>() ? "true" : "false";
  if (j.is_number()) return j.dump();
  return "";
}

db::Value text_or_null(const json& j) { return j.is_string() ? db::Value(j.get<std::string>()) : db::Value(nullptr); }

db::Value key_or_null(const json& j) {
  if (!j.is_string()) return nullptr;
  std::string key = fold(j.get<std::string>());
  return key.empty() ? db::Value(nullptr) : db::Value(key);
}

void append(std::vector<std::string>& to, const std::vector<std::string>& more) { to.insert(to.end(), more.begin(), more.end()); }

const std::vector<std::string> kProductColumns = {
    "product_id", "seller_id", "category_id", "cat0", "cat1", "cat2", "cat3", "cat4", "cat5", "cat6", "cat7",
    "brand", "brand_key", "condition", "city", "city_key", "lat", "lng", "currency", "price_min", "price_max",
    "price_bucket", "in_stock", "rating", "rating_count", "published_at", "indexed_at"};

const std::vector<std::string> kSellerColumns = {"user_id", "profile_id", "name_key", "city", "city_key",
                                                 "approved_at", "hit", "indexed_at"};

}  // namespace

Search::Search(db::Database& db, jobs::Queue& queue, jobs::Outbox& outbox, catalog::Catalog& catalog,
               identity::Identity& identity, Options options)
    : db_(db), queue_(queue), outbox_(outbox), catalog_(catalog), identity_(identity),
      text_(TextIndex::make(db.engine())), counts_(std::make_unique<CountsCache>()),
      pages_(options.page_cache_ttl, 5000) {}

Search::~Search() = default;

void Search::register_jobs() {
  auto handler = [this](const json& event) { on_event(event); };
  for (const char* family : {"product.*", "category.*", "seller_profile.*", "seller_products.*"})
    outbox_.subscribe(family, "search", handler);
  queue_.handle("search.category", [this](const jobs::Job& job) {
    reindex_category(job.payload.at("category_id"), job.payload.value("after", ""));
  });
  queue_.handle("search.seller", [this](const jobs::Job& job) {
    reindex_seller(job.payload.at("seller_id"), job.payload.value("after", ""));
  });
}

void Search::on_event(const json& event) {
  std::string type = event.value("type", "");
  const json& payload = event.at("payload");
  if (type.rfind("product.", 0) == 0) index_product(payload.at("product_id").get<std::string>());
  else if (type == "category.updated") reindex_category(payload.at("category_id"), "");
  else if (type.rfind("seller_profile.", 0) == 0) index_seller(payload.at("profile_id").get<std::string>());
  else if (type == "seller_products.changed") reindex_seller(payload.at("seller_id"), "");
  // category.created and category.deleted: no product is filed there.
}

// ---- products

void Search::index_product(const std::string& product_id) { index_products({product_id}); }

void Search::index_products(const std::vector<std::string>& product_ids) {
  db_.write([&](db::Tx& tx) {
    Categories categories{catalog_, {}};
    index_products(tx, product_ids, categories);
  });
}

namespace {

// A product's row of search_products (kProductColumns, in order) from its document.
db::Params product_row(const json& d, const std::vector<std::string>& path, const json& published) {
  db::Params params = {d["id"].get<std::string>(), d["seller_id"].get<std::string>(), d["category_id"].get<std::string>()};
  for (int level = 0; level < kCategoryLevels; ++level)
    params.push_back(size_t(level) < path.size() ? db::Value(path[size_t(level)]) : db::Value(nullptr));
  params.push_back(text_or_null(d["brand"]));
  params.push_back(key_or_null(d["brand"]));
  params.push_back(d["condition"].get<std::string>());
  params.push_back(text_or_null(d["city"]));
  params.push_back(key_or_null(d["city"]));
  params.push_back(d["lat"].is_number() ? db::Value(d["lat"].get<double>()) : db::Value(nullptr));
  params.push_back(d["lng"].is_number() ? db::Value(d["lng"].get<double>()) : db::Value(nullptr));
  params.push_back(d["currency"].get<std::string>());
  params.push_back(d["price_min"].get<int64_t>());
  params.push_back(d["price_max"].get<int64_t>());
  params.push_back(price_bucket(d["price_min"].get<int64_t>()));
  params.push_back(d.value("in_stock", false));
  params.push_back(d["rating"].is_number() ? d["rating"].get<double>() : 0.0);
  params.push_back(d.value("rating_count", int64_t(0)));
  params.push_back(published.get<std::string>());
  params.push_back(now_text());
  return params;
}

// A product's attribute values, its own and its SKUs', each once:
// (key, folded value) → the value as written.
using AttributeValues = std::map<std::pair<std::string, std::string>, std::string>;
AttributeValues attribute_values(const json& d) {
  AttributeValues out;
  auto collect = [&](const json& attributes) {
    if (!attributes.is_object()) return;
    for (const auto& [key, value] : attributes.items()) {
      std::string text = text_of(value);
      std::string folded = fold(text);
      if (!folded.empty() && text.size() <= 200) out.emplace(std::make_pair(key, folded), text);
    }
  };
  collect(d.value("attributes", json::object()));
  for (const auto& sku : d.value("sku_attributes", json::array())) collect(sku);
  return out;
}

// What a results page shows of a product.
json product_hit(const json& d, const json& category, const json& published) {
  json location = d["lat"].is_number() && d["lng"].is_number() ? json{{"lat", d["lat"]}, {"lng", d["lng"]}} : json(nullptr);
  return {{"id", d["id"]},
          {"title", d["title"]},
          {"brand", d["brand"]},
          {"price", d["price_min"]},
          {"price_max", d["price_max"]},
          {"currency", d["currency"]},
          {"image", d.value("image", json(nullptr))},
          {"seller", {{"id", d["seller_id"]}, {"name", d["seller_name"]}}},
          {"rating", {{"average", d["rating"]}, {"count", d["rating_count"]}}},
          {"city", d["city"]},
          {"location", location},
          {"condition", d["condition"]},
          {"category", category},
          {"in_stock", d["in_stock"]},
          {"published_at", published}};
}

}  // namespace

// The documents' rows (the key column first), then their words beside them.
std::vector<int64_t> Search::upsert_documents(db::Tx& tx, const TextTable& table, std::vector<std::string> columns,
                                              const std::vector<db::Params>& rows, const std::vector<FieldWords>& text) {
  std::string names, updates;
  for (size_t c = 0; c < columns.size(); ++c) {
    names += (c ? ", " : "") + columns[c];
    if (c) updates += (c > 1 ? ", " : "") + columns[c] + " = excluded." + columns[c];
  }
  std::vector<db::Value> values;
  for (const auto& row : rows) values.insert(values.end(), row.begin(), row.end());
  std::map<std::string, int64_t> docs;
  for (const auto& r : db::bulk_insert(tx, std::string(table.table) + " (" + names + ")", columns.size(), values,
                                       "ON CONFLICT (" + columns[0] + ") DO UPDATE SET " + updates + " RETURNING doc, " +
                                           columns[0]))
    docs[r.text(columns[0])] = r.integer("doc");
  std::vector<int64_t> out;
  DocWords words;
  for (size_t i = 0; i < rows.size(); ++i) {
    out.push_back(docs.at(rows[i][0].as_string()));
    words.emplace_back(out.back(), text[i]);
  }
  text_->put(tx, table, words);
  return out;
}

void Search::index_products(db::Tx& tx, std::vector<std::string> ids, Categories& categories) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (ids.empty()) return;
  std::vector<std::string> subjects;
  for (const auto& id : ids) subjects.push_back("product:" + id);
  db::lock_keys(tx, subjects);
  touched(tx);
  std::vector<json> documents = catalog_.search_documents(tx, ids);
  // Those without a document should not be found.
  std::set<std::string> found;
  for (const auto& d : documents) found.insert(d["id"].get<std::string>());
  std::vector<std::string> gone;
  for (const auto& id : ids)
    if (!found.count(id)) gone.push_back(id);
  remove_products(tx, gone);
  if (documents.empty()) return;

  std::vector<db::Params> rows;
  std::vector<FieldWords> text;
  std::vector<std::string> hits;
  std::vector<AttributeValues> values;
  std::vector<std::vector<std::string>> paths;
  for (const json& d : documents) {
    paths.push_back(path_ids(d.value("category_path", "")));
    json published = d["published_at"].is_string() ? d["published_at"] : d["created_at"];
    rows.push_back(product_row(d, paths.back(), published));
    hits.push_back(dump_json(product_hit(d, categories.summary(tx, d.at("category_id")), published)));
    values.push_back(attribute_values(d));
    std::vector<std::string> attribute_words;
    for (const auto& [_, value] : values.back()) append(attribute_words, words(value));
    std::string category_names;
    for (const auto& name : d.value("category_names", json::array()))
      if (name.is_string()) category_names += name.get<std::string>() + " ";
    text.push_back({words(d.value("title", "")), words(d["brand"].is_string() ? d["brand"].get<std::string>() : ""),
                    words(category_names), attribute_words, words(d.value("description", ""))});
  }
  std::vector<int64_t> docs = upsert_documents(tx, kProductText, kProductColumns, rows, text);

  std::vector<db::Value> hit_rows;
  for (size_t n = 0; n < docs.size(); ++n) {
    hit_rows.emplace_back(docs[n]);
    hit_rows.emplace_back(hits[n]);
  }
  db::bulk_insert(tx, "search_product_hits (doc, hit)", 2, hit_rows,
                  "ON CONFLICT (doc) DO UPDATE SET hit = excluded.hit");

  db::Params in_params;
  std::string in = db::bind_list(in_params, docs);
  tx.exec("DELETE FROM search_product_attributes WHERE doc IN (" + in + ")", in_params);
  std::vector<db::Value> attribute_rows;
  for (size_t n = 0; n < docs.size(); ++n) {
    auto level = [&](size_t k) { return k < paths[n].size() ? db::Value(paths[n][k]) : db::Value(nullptr); };
    for (const auto& [kv, value] : values[n])
      for (db::Value v : {db::Value(docs[n]), db::Value(kv.first), db::Value(kv.second), db::Value(value), level(0),
                          level(1), level(2)})
        attribute_rows.push_back(std::move(v));
  }
  db::bulk_insert(tx, "search_product_attributes (doc, key, value_key, value, cat0, cat1, cat2)", 7, attribute_rows);

  std::vector<std::string> all;
  for (const auto& fields : text)
    for (const auto& field : fields) append(all, field);
  add_terms(tx, all);
}

void Search::remove_products(db::Tx& tx, const std::vector<std::string>& product_ids) {
  if (product_ids.empty()) return;
  db::Params params;
  std::string in = db::bind_list(params, product_ids);
  std::vector<int64_t> docs;
  for (const auto& r : tx.query("SELECT doc FROM search_products WHERE product_id IN (" + in + ")", params))
    docs.push_back(r.integer("doc"));
  if (docs.empty()) return;
  text_->remove(tx, kProductText, docs);
  db::Params doc_params;
  std::string doc_in = db::bind_list(doc_params, docs);
  for (const char* table : {"search_product_attributes", "search_product_hits", "search_products"})
    tx.exec(std::string("DELETE FROM ") + table + " WHERE doc IN (" + doc_in + ")", doc_params);
}

// A renamed or moved category changes its products' documents (their
// category names and path): they are indexed again, a batch per job.
void Search::reindex_category(const std::string& category_id, const std::string& after) {
  db_.write([&](db::Tx& tx) {
    std::string in_subtree;
    for (int level = 0; level < kCategoryLevels; ++level)
      in_subtree += (level ? " OR cat" : "cat") + std::to_string(level) + " = $1";
    std::vector<std::string> ids;
    for (const auto& r : tx.query("SELECT product_id FROM search_products WHERE (" + in_subtree +
                                      ") AND product_id > $2 ORDER BY product_id LIMIT $3",
                                  {category_id, after, int64_t(kFollowBatch)}))
      ids.push_back(r.text("product_id"));
    Categories categories{catalog_, {}};
    index_products(tx, ids, categories);
    if (int(ids.size()) == kFollowBatch)
      queue_.enqueue(tx, "search.category", {{"category_id", category_id}, {"after", ids.back()}});
  });
}

// A seller was suspended or came back: each of their products is found, or
// not, again; a batch per job.
void Search::reindex_seller(const std::string& seller_id, const std::string& after) {
  db_.write([&](db::Tx& tx) {
    std::vector<std::string> ids = catalog_.product_ids(tx, after, kFollowBatch, seller_id);
    Categories categories{catalog_, {}};
    index_products(tx, ids, categories);
    if (int(ids.size()) == kFollowBatch)
      queue_.enqueue(tx, "search.seller", {{"seller_id", seller_id}, {"after", ids.back()}});
  });
}

// ---- sellers

void Search::index_seller(const std::string& profile_id) {
  db_.write([&](db::Tx& tx) { index_seller(tx, profile_id); });
}

void Search::index_seller(db::Tx& tx, const std::string& profile_id) {
  db::lock_keys(tx, {"seller:" + profile_id});
  touched(tx);
  auto p = identity_.seller_profile(tx, profile_id);
  if (!p) return;
  std::string user_id = (*p)["user_id"];
  if ((*p)["status"] != "approved" || (*p)["user_status"] != "active") {
    remove_seller(tx, user_id);
    return;
  }
  std::string name = (*p)["business_name"], city = (*p).value("city", ""), description = (*p).value("description", "");
  json approved = (*p)["decided_at"].is_string() ? (*p)["decided_at"] : (*p)["created_at"];
  json hit = {{"id", user_id},
              {"business_name", name},
              {"description", description},
              {"city", city.empty() ? json(nullptr) : json(city)},
              {"verified", true},
              {"approved_at", approved}};
  db::Params params = {user_id, profile_id, fold(name), db::null_if_empty(city), db::null_if_empty(fold(city)),
                       approved.get<std::string>(), dump_json(hit), now_text()};
  FieldWords text = {words(name), words(city), words(description)};
  upsert_documents(tx, kSellerText, kSellerColumns, {params}, {text});
  std::vector<std::string> all;
  for (const auto& field : text) append(all, field);
  add_terms(tx, all);
}

void Search::remove_seller(db::Tx& tx, const std::string& user_id) {
  auto row = tx.query_one("SELECT doc FROM search_sellers WHERE user_id = $1", {user_id});
  if (!row) return;
  text_->remove(tx, kSellerText, {row->integer("doc")});
  tx.exec("DELETE FROM search_sellers WHERE doc = $1", {row->integer("doc")});
}

// ---- the vocabulary

void Search::add_terms(db::Tx& tx, const std::vector<std::string>& all) {
  std::set<std::string> fresh;
  {
    std::lock_guard lock(terms_mutex_);
    for (const auto& w : all)
      if (!known_terms_.count(w) && in_vocabulary(code_points(w))) fresh.insert(w);
  }
  if (fresh.empty()) return;
  // In one order everywhere, so that two writers never wait on each other's words.
  std::vector<std::string> sorted(fresh.begin(), fresh.end());
  std::vector<db::Value> rows;
  for (const auto& term : sorted) {
    auto cp = code_points(term);
    std::u32string_view letters(cp);
    for (db::Value v : {db::Value(term), db::Value(int64_t(cp.size())), db::Value(to_utf8(letters.substr(0, 2))),
                        db::Value(to_utf8(letters.substr(letters.size() - 2)))})
      rows.push_back(std::move(v));
  }
  db::bulk_insert(tx, "search_terms (term, letters, head, tail)", 4, rows, "ON CONFLICT (term) DO NOTHING");
  tx.after_commit([this, sorted = std::move(sorted)] {
    std::lock_guard lock(terms_mutex_);
    if (known_terms_.size() > 500'000) known_terms_.clear();
    known_terms_.insert(sorted.begin(), sorted.end());
  });
}

// ---- rebuilding

void Search::reindex(const ReindexOptions& o, const std::function<void(int64_t, int64_t)>& progress) {
  std::string started = now_text();
  if (o.fresh) {
    db_.write([&](db::Tx& tx) {
      text_->clear(tx, kProductText);
      text_->clear(tx, kSellerText);
      for (const char* table :
           {"search_product_attributes", "search_product_hits", "search_products", "search_sellers", "search_terms"})
        tx.exec(std::string("DELETE FROM ") + table);
      touched(tx);
    });
    std::lock_guard lock(terms_mutex_);
    known_terms_.clear();
  }
  std::vector<std::string> products, profiles;
  for (std::string after;;) {
    auto ids = db_.read([&](db::Tx& tx) { return catalog_.product_ids(tx, after, 10000); });
    if (ids.empty()) break;
    after = ids.back();
    append(products, ids);
  }
  for (std::string after;;) {
    auto ids = db_.read([&](db::Tx& tx) { return identity_.seller_profile_ids(tx, after, 10000); });
    if (ids.empty()) break;
    after = ids.back();
    append(profiles, ids);
  }
  int64_t total = int64_t(products.size() + profiles.size()), done = 0;
  size_t batch = size_t(std::max(1, o.batch));
  progress(0, total);
  for (size_t first = 0; first < products.size(); first += batch) {
    size_t last = std::min(products.size(), first + batch);
    db_.write([&](db::Tx& tx) {
      text_->bulk(tx);
      Categories categories{catalog_, {}};
      index_products(tx, std::vector<std::string>(products.begin() + long(first), products.begin() + long(last)),
                     categories);
    });
    done += int64_t(last - first);
    progress(done, total);
  }
  for (size_t first = 0; first < profiles.size(); first += batch) {
    size_t last = std::min(profiles.size(), first + batch);
    db_.write([&](db::Tx& tx) {
      for (size_t i = first; i < last; ++i) index_seller(tx, profiles[i]);
    });
    done += int64_t(last - first);
    progress(done, total);
  }
  // What the owners no longer have: not seen above and not written since.
  std::sort(products.begin(), products.end());
  int64_t swept = db_.write([&](db::Tx& tx) {
    std::vector<std::string> gone;
    for (const auto& r : tx.query("SELECT product_id FROM search_products WHERE indexed_at < $1", {started}))
      if (!std::binary_search(products.begin(), products.end(), r.text("product_id"))) gone.push_back(r.text("product_id"));
    for (size_t first = 0; first < gone.size(); first += 500)
      remove_products(tx, std::vector<std::string>(gone.begin() + long(first),
                                                   gone.begin() + long(std::min(gone.size(), first + 500))));
    return int64_t(gone.size());
  });
  if (swept) log::info("search reindex: removed documents of products that no longer exist", {{"removed", swept}});
  db_.write([&](db::Tx& tx) {
    text_->optimize(tx, kProductText);
    text_->optimize(tx, kSellerText);
  });
}

}  // namespace souq::search
