#include "db/sqlite/fts_rank.hpp"

#include <sqlite3.h>

#include <cmath>
#include <vector>

namespace souq::db {
namespace {

// The idf of each phrase of the query, worked out once per query.
struct Rarity {
  std::vector<double> idf;
};

int count_row(const Fts5ExtensionApi*, Fts5Context*, void* n) {
  ++*static_cast<sqlite3_int64*>(n);
  return SQLITE_OK;
}

Rarity* rarity(const Fts5ExtensionApi* api, Fts5Context* ctx, int& rc) {
  if (auto* known = static_cast<Rarity*>(api->xGetAuxdata(ctx, 0))) return known;
  auto* r = new Rarity;
  sqlite3_int64 rows = 0;
  rc = api->xRowCount(ctx, &rows);
  int phrases = api->xPhraseCount(ctx);
  for (int p = 0; p < phrases && rc == SQLITE_OK; ++p) {
    sqlite3_int64 n = 0;
    rc = api->xQueryPhrase(ctx, p, &n, count_row);
    // As BM25's, kept above zero so that a word in most documents still counts.
    double idf = std::log((double(rows) - double(n) + 0.5) / (double(n) + 0.5));
    r->idf.push_back(idf > 1e-6 ? idf : 1e-6);
  }
  if (rc == SQLITE_OK) rc = api->xSetAuxdata(ctx, r, [](void* p) { delete static_cast<Rarity*>(p); });
  else delete r;
  return rc == SQLITE_OK ? static_cast<Rarity*>(api->xGetAuxdata(ctx, 0)) : nullptr;
}

void weighted(const Fts5ExtensionApi* api, Fts5Context* ctx, sqlite3_context* out, int weights, sqlite3_value** values) {
  int rc = SQLITE_OK;
  Rarity* r = rarity(api, ctx, rc);
  if (!r) {
    sqlite3_result_error_code(out, rc);
    return;
  }
  double score = 0;
  for (int p = 0; p < api->xPhraseCount(ctx); ++p) {
    Fts5PhraseIter it;
    int column = -1;
    for (api->xPhraseFirstColumn(ctx, p, &it, &column); column >= 0; api->xPhraseNextColumn(ctx, &it, &column))
      score += r->idf[size_t(p)] * (column < weights ? sqlite3_value_double(values[column]) : 1.0);
  }
  sqlite3_result_double(out, score);
}

fts5_api* fts5_of(sqlite3* db) {
  fts5_api* api = nullptr;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &stmt, nullptr) != SQLITE_OK) return nullptr;
  sqlite3_bind_pointer(stmt, 1, &api, "fts5_api_ptr", nullptr);
  sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  return api;
}

}  // namespace

bool register_weighted_rank(sqlite3* db) {
  fts5_api* api = fts5_of(db);
  return api && api->xCreateFunction(api, "souq_weighted", nullptr, weighted, nullptr) == SQLITE_OK;
}

}  // namespace souq::db
