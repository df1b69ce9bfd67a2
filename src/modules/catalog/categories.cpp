// The category tree: admins add, rename, move, reorder and delete
// categories; everyone reads the tree. Each category declares the typed
// attributes of the products filed under it (and under its descendants).
#include <algorithm>
#include <map>
#include <tuple>

#include "core/id.hpp"
#include "core/time.hpp"
#include "modules/audit/module.hpp"
#include "modules/catalog/module.hpp"

namespace souq::catalog {
namespace {

constexpr const char* kCategoryColumns =
    "id, parent_id, slug, name, description, position, path, depth, attributes, created_at, updated_at";

json category_json(const db::Row& r) {
  return {{"id", r.text("id")},
          {"parent_id", r.nullable_text("parent_id")},
          {"slug", r.text("slug")},
          {"name", r.text("name")},
          {"description", r.text("description")},
          {"position", r.integer("position")},
          {"depth", r.integer("depth")},
          {"attributes", r.json("attributes")},
          {"created_at", r.text("created_at")},
          {"updated_at", r.text("updated_at")}};
}

// `locking`: tx.for_update(), tx.for_share() or nothing.
std::optional<db::Row> load_category(db::Tx& tx, const std::string& id_or_slug, std::string_view locking = {}) {
  return tx.query_one(std::string("SELECT ") + kCategoryColumns + " FROM categories WHERE " +
                          (is_id(id_or_slug, "cat") ? "id" : "slug") + " = $1 AND deleted_at IS NULL" +
                          std::string(locking),
                      {id_or_slug});
}

}  // namespace

json Catalog::category_tree(db::Tx& tx) {
  auto fetched = tx.query(std::string("SELECT ") + kCategoryColumns + " FROM categories WHERE deleted_at IS NULL");
  std::vector<db::Row> rows(fetched.begin(), fetched.end());
  // Sorted here, not by ORDER BY name: the databases compare text by their
  // collation (bytes on SQLite, the locale's rules on PostgreSQL), and the
  // tree must read the same on both. Names compare without regard to case.
  auto folded = [](std::string s) {
    for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const db::Row& a, const db::Row& b) {
    auto key = [&](const db::Row& r) {
      return std::make_tuple(r.integer("depth"), r.integer("position"), folded(r.text("name")), r.text("name"),
                             r.text("id"));
    };
    return key(a) < key(b);
  });
  // Parents come before children (by depth): attach each to its parent.
  std::map<std::string, json> nodes;
  std::vector<std::string> order;
  for (const auto& r : rows) {
    json node = category_json(r);
    node["children"] = json::array();
    nodes[r.text("id")] = std::move(node);
    order.push_back(r.text("id"));
  }
  // Deepest first, so that a child is complete before it is copied into its parent.
  std::stable_sort(order.begin(), order.end(),
                   [&](const std::string& a, const std::string& b) { return nodes[a]["depth"] > nodes[b]["depth"]; });
  json roots = json::array();
  std::map<std::string, std::vector<std::string>> children;
  for (const auto& r : rows)
    if (!r.is_null("parent_id")) children[r.text("parent_id")].push_back(r.text("id"));
  for (const auto& id : order) {
    auto& node = nodes[id];
    for (const auto& child : children[id]) node["children"].push_back(std::move(nodes[child]));
  }
  for (const auto& r : rows)
    if (r.is_null("parent_id")) roots.push_back(std::move(nodes[r.text("id")]));
  return roots;
}

std::optional<json> Catalog::find_category(db::Tx& tx, const std::string& id_or_slug, bool share) {
  auto r = load_category(tx, id_or_slug, share ? tx.for_share() : std::string_view());
  if (!r) return std::nullopt;
  json out = category_json(*r);
  out["path"] = r->text("path");
  out["attributes"] = effective_attributes(tx, r->text("path"));
  return out;
}

// The attribute definitions of a category and its ancestors (the nearest
// definition of a key wins).
json Catalog::effective_attributes(db::Tx& tx, const std::string& path) {
  std::vector<std::string> ids;
  for (size_t start = 1; start < path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) break;
    ids.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  if (ids.empty()) return json::array();
  db::Params params;
  std::string in = db::bind_list(params, ids);
  std::map<std::string, json> by_id;
  for (const auto& r : tx.query("SELECT id, attributes FROM categories WHERE id IN (" + in + ")", params))
    by_id[r.text("id")] = r.json("attributes");
  json out = json::array();
  std::map<std::string, size_t> at;
  for (const auto& id : ids)  // root first: deeper definitions replace
    for (const auto& def : by_id[id]) {
      std::string key = def.value("key", "");
      if (auto it = at.find(key); it != at.end()) out[it->second] = def;
      else {
        at[key] = out.size();
        out.push_back(def);
      }
    }
  return out;
}

json Catalog::create_category(const identity::Principal& admin, const json& f, const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    std::string id = new_id("cat");
    std::string path = "/" + id + "/";
    int64_t depth = 0;
    std::optional<std::string> parent_id;
    if (f.contains("parent") && f["parent"].is_string()) {
      auto parent = load_category(tx, f["parent"].get<std::string>(), tx.for_share());
      if (!parent) throw ApiError::unprocessable("unknown_category", "No such parent category.", {{"parent", f["parent"]}});
      if (parent->integer("depth") >= 7)
        throw ApiError::unprocessable("category_too_deep", "Categories nest at most 8 levels deep.");
      parent_id = parent->text("id");
      path = parent->text("path") + id + "/";
      depth = parent->integer("depth") + 1;
    }
    std::string slug = f.at("slug");
    if (tx.query_one("SELECT 1 AS x FROM categories WHERE slug = $1", {slug}))
      throw ApiError::conflict("slug_taken", "Another category has this slug.", {{"slug", slug}});
    int64_t position = f.value("position", int64_t(0));
    std::string now = now_text();
    tx.exec("INSERT INTO categories (id, parent_id, slug, name, description, position, path, depth, attributes,"
            " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            {id, parent_id ? db::Value(*parent_id) : db::Value(nullptr), slug, f.at("name").get<std::string>(),
             f.value("description", ""), position, path, depth, dump_json(f.value("attributes", json::array())), now});
    audit::record(tx, {admin.user_id, "category.create", "category", id, "", {{"slug", slug}}, request_id});
    outbox_.emit(tx, "category.created", {{"category_id", id}}, id, request_id);
    return category_json(*load_category(tx, id));
  });
}

json Catalog::update_category(const identity::Principal& admin, const std::string& id, const json& f,
                              const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto row = load_category(tx, id, tx.for_update());
    if (!row) throw ApiError::not_found("No such category.");
    std::string cid = row->text("id");
    std::string now = now_text();
    if (f.contains("slug") && f["slug"] != row->text("slug")) {
      if (tx.query_one("SELECT 1 AS x FROM categories WHERE slug = $1", {f["slug"].get<std::string>()}))
        throw ApiError::conflict("slug_taken", "Another category has this slug.", {{"slug", f["slug"]}});
      tx.exec("UPDATE categories SET slug = $2 WHERE id = $1", {cid, f["slug"].get<std::string>()});
    }
    for (const char* field : {"name", "description"})
      if (f.contains(field))
        tx.exec(std::string("UPDATE categories SET ") + field + " = $2 WHERE id = $1", {cid, f[field].get<std::string>()});
    if (f.contains("position")) tx.exec("UPDATE categories SET position = $2 WHERE id = $1", {cid, f["position"].get<int64_t>()});
    if (f.contains("attributes"))
      tx.exec("UPDATE categories SET attributes = $2 WHERE id = $1", {cid, dump_json(f["attributes"])});
    if (f.contains("parent")) {
      // Moving: this category's subtree follows it.
      std::string old_path = row->text("path");
      std::string new_path = "/" + cid + "/";
      int64_t new_depth = 0;
      std::optional<std::string> parent_id;
      if (f["parent"].is_string()) {
        auto parent = load_category(tx, f["parent"].get<std::string>(), tx.for_share());
        if (!parent) throw ApiError::unprocessable("unknown_category", "No such parent category.", {{"parent", f["parent"]}});
        std::string ppath = parent->text("path");
        if (ppath.compare(0, old_path.size(), old_path) == 0)
          throw ApiError::unprocessable("category_cycle", "A category cannot move under itself or its descendants.");
        parent_id = parent->text("id");
        new_path = ppath + cid + "/";
        new_depth = parent->integer("depth") + 1;
      }
      int64_t shift = new_depth - row->integer("depth");
      auto deepest = tx.query_one("SELECT MAX(depth) AS d FROM categories WHERE substr(path, 1, $2) = $1 AND deleted_at IS NULL",
                                  {old_path, int64_t(old_path.size())});
      if (deepest && deepest->integer("d") + shift > 7)
        throw ApiError::unprocessable("category_too_deep", "Categories nest at most 8 levels deep.");
      tx.exec("UPDATE categories SET parent_id = $2 WHERE id = $1",
              {cid, parent_id ? db::Value(*parent_id) : db::Value(nullptr)});
      tx.exec("UPDATE categories SET path = $3 || substr(path, $2 + 1), depth = depth + $4"
              " WHERE substr(path, 1, $2) = $1",
              {old_path, int64_t(old_path.size()), new_path, shift});
    }
    tx.exec("UPDATE categories SET updated_at = $2 WHERE id = $1", {cid, now});
    // Product pages show the category's name and path.
    if (f.contains("name") || f.contains("slug") || f.contains("parent")) forget_all_at_commit(tx);
    audit::record(tx, {admin.user_id, "category.update", "category", cid, "", f, request_id});
    outbox_.emit(tx, "category.updated", {{"category_id", cid}}, cid, request_id);
    return category_json(*load_category(tx, cid));
  });
}

std::string Catalog::delete_category(const identity::Principal& admin, const std::string& id,
                                     const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto row = load_category(tx, id, tx.for_update());
    if (!row) throw ApiError::not_found("No such category.");
    std::string cid = row->text("id");
    if (tx.query_one("SELECT 1 AS x FROM categories WHERE parent_id = $1 AND deleted_at IS NULL", {cid}))
      throw ApiError::conflict("category_in_use", "Move or delete this category's children first.");
    if (tx.query_one("SELECT 1 AS x FROM products WHERE category_id = $1 AND deleted_at IS NULL", {cid}))
      throw ApiError::conflict("category_in_use", "Products are filed under this category; move them first.");
    // Deleted products (and deleted children) still name it: the row stays
    // for them, out of the tree, its slug free for a new category.
    if (tx.query_one("SELECT 1 AS x FROM products WHERE category_id = $1", {cid}) ||
        tx.query_one("SELECT 1 AS x FROM categories WHERE parent_id = $1", {cid}))
      tx.exec("UPDATE categories SET deleted_at = $2, slug = slug || '~' || id WHERE id = $1", {cid, now_text()});
    else
      tx.exec("DELETE FROM categories WHERE id = $1", {cid});
    audit::record(tx, {admin.user_id, "category.delete", "category", cid, "", {{"slug", row->text("slug")}}, request_id});
    outbox_.emit(tx, "category.deleted", {{"category_id", cid}}, cid, request_id);
    return cid;
  });
}

}  // namespace souq::catalog
