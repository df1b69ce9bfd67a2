#include "modules/search/text_index.hpp"

#include <map>

namespace souq::search {
namespace {

std::string placeholder(db::Params& params, db::Value v) {
  params.push_back(std::move(v));
  return "$" + std::to_string(params.size());
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

// Words never hold quotes (they are letters and digits), but a literal is
// made safe whatever it is given.
std::string quoted(const std::string& word, char quote) {
  std::string out(1, quote);
  for (char c : word) {
    if (c == quote) out += quote;
    out += c;
  }
  return out + quote;
}

class SqliteText final : public TextIndex {
 public:
  void put(db::Tx& tx, const TextTable& t, const DocWords& docs) override {
    std::vector<int64_t> ids;
    for (const auto& [doc, _] : docs) ids.push_back(doc);
    remove(tx, t, ids);
    std::string columns = "rowid";
    for (const auto& f : t.fields) columns += std::string(", ") + f.name;
    std::vector<db::Value> values;
    for (const auto& [doc, words] : docs) {
      values.emplace_back(doc);
      for (size_t i = 0; i < t.fields.size(); ++i) values.emplace_back(i < words.size() ? join(words[i]) : std::string());
    }
    db::bulk_insert(tx, std::string(t.fts) + " (" + columns + ")", t.fields.size() + 1, values);
  }

  void remove(db::Tx& tx, const TextTable& t, const std::vector<int64_t>& docs) override {
    if (docs.empty()) return;
    db::Params params;
    std::string in = db::bind_list(params, docs);
    tx.exec(std::string("DELETE FROM ") + t.fts + " WHERE rowid IN (" + in + ")", params);
  }

  void clear(db::Tx& tx, const TextTable& t) override { tx.exec(std::string("DELETE FROM ") + t.fts); }

  void optimize(db::Tx& tx, const TextTable& t) override {
    tx.exec(std::string("INSERT INTO ") + t.fts + " (" + t.fts + ") VALUES ('optimize')");
  }

  void bulk(db::Tx& tx) override { tx.script("PRAGMA cache_size = -262144"); }  // 256 MB

  Match match(const TextTable& t, const QueryWords& query, db::Params& params) override {
    std::string weights;
    for (const auto& f : t.fields) weights += ", " + std::to_string(f.weight);
    std::string fts = t.fts;
    // souq_weighted (db/sqlite/fts_rank): bm25 without reading each match's document sizes.
    return {fts + " JOIN " + t.table + " d ON d.doc = " + fts + ".rowid", fts + " MATCH " + placeholder(params, expression(query)),
            "souq_weighted(" + fts + weights + ")", fts + ".rowid"};
  }

  bool contains(db::Tx& tx, const TextTable& t, const std::string& word) override {
    std::string fts = t.fts;
    return tx.query_one("SELECT 1 AS x FROM " + fts + " WHERE " + fts + " MATCH $1 LIMIT 1", {quoted(word, '"')})
        .has_value();
  }


 private:
  // ("w1" OR "w1b") AND ("w2")
  static std::string expression(const QueryWords& query) {
    std::string out;
    for (const auto& group : query) {
      if (!out.empty()) out += " AND ";
      out += "(";
      for (size_t i = 0; i < group.size(); ++i) out += (i ? " OR " : "") + quoted(group[i], '"');
      out += ")";
    }
    return out;
  }
};

class PostgresText final : public TextIndex {
 public:
  void put(db::Tx& tx, const TextTable& t, const DocWords& docs) override {
    std::vector<db::Value> values;
    for (const auto& [doc, words] : docs) {
      values.emplace_back(doc);
      values.emplace_back(vector(t, words));
    }
    db::bulk_insert(tx, std::string(t.fts) + " (doc, words)", 2, values, "ON CONFLICT (doc) DO UPDATE SET words = excluded.words");
  }

  void remove(db::Tx& tx, const TextTable& t, const std::vector<int64_t>& docs) override {
    if (docs.empty()) return;
    db::Params params;
    std::string in = db::bind_list(params, docs);
    tx.exec(std::string("DELETE FROM ") + t.fts + " WHERE doc IN (" + in + ")", params);
  }

  void clear(db::Tx& tx, const TextTable& t) override { tx.exec(std::string("DELETE FROM ") + t.fts); }

  void optimize(db::Tx&, const TextTable&) override {}

  void bulk(db::Tx&) override {}

  Match match(const TextTable& t, const QueryWords& query, db::Params& params) override {
    std::string fts = t.fts;
    std::string q = placeholder(params, expression(query)) + "::tsquery";
    return {fts + " JOIN " + t.table + " d ON d.doc = " + fts + ".doc", fts + ".words @@ " + q,
            "ts_rank(" + fts + ".words, " + q + ")::float8", fts + ".doc"};
  }

  bool contains(db::Tx& tx, const TextTable& t, const std::string& word) override {
    return tx.query_one(std::string("SELECT 1 AS x FROM ") + t.fts + " WHERE words @@ $1::tsquery LIMIT 1",
                        {quoted(word, '\'')})
        .has_value();
  }

 private:
  // 'word':1A,7B 'other':2A — positions run on through the fields, as
  // PostgreSQL allows them (at most 16383, 256 per word).
  static std::string vector(const TextTable& t, const FieldWords& words) {
    std::map<std::string, std::string> positions;
    std::map<std::string, int> counts;
    int position = 0;
    for (size_t f = 0; f < words.size() && f < t.fields.size(); ++f)
      for (const auto& w : words[f]) {
        position = std::min(position + 1, 16383);
        if (++counts[w] > 256) continue;
        auto& p = positions[w];
        if (!p.empty()) p += ',';
        p += std::to_string(position) + t.fields[f].pg_weight;
      }
    std::string out;
    for (const auto& [w, p] : positions) {
      if (!out.empty()) out += ' ';
      out += quoted(w, '\'') + ":" + p;
    }
    return out;
  }

  // ('w1' | 'w1b') & 'w2'
  static std::string expression(const QueryWords& query) {
    std::string out;
    for (const auto& group : query) {
      if (!out.empty()) out += " & ";
      out += "(";
      for (size_t i = 0; i < group.size(); ++i) out += (i ? " | " : "") + quoted(group[i], '\'');
      out += ")";
    }
    return out;
  }
};

}  // namespace

std::unique_ptr<TextIndex> TextIndex::make(db::Engine engine) {
  if (engine == db::Engine::postgres) return std::make_unique<PostgresText>();
  return std::make_unique<SqliteText>();
}

}  // namespace souq::search
