// The one place where search on SQLite and on PostgreSQL differ: how a
// document's words are stored, matched and ranked. Both keep them in a table
// beside the documents, named TextTable::fts: SQLite an FTS5 table (rowid =
// doc) ranked by souq_weighted (db/sqlite/fts_rank), PostgreSQL a narrow
// table (doc, words tsvector, GIN-indexed) ranked by ts_rank. Both are given
// words made by search::words(), never raw text, so both find the same
// documents.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "db/database.hpp"

namespace souq::search {

// A field of a document's text and its weight in the ranking.
struct TextField {
  const char* name;
  double weight;     // bm25 column weight (SQLite)
  char pg_weight;    // tsvector weight A–D (PostgreSQL)
};

// A table of documents with text: `table` holds one row per document (its
// key column is `doc`); `fts` is the table of their words beside it.
struct TextTable {
  const char* table;
  const char* fts;
  std::vector<TextField> fields;
};

// A document's words, field by field (as TextTable::fields).
using FieldWords = std::vector<std::vector<std::string>>;
// Documents' words by document (the table's doc).
using DocWords = std::vector<std::pair<int64_t, FieldWords>>;
// What a query asks for: every group must match; a group is a word and the
// words that may stand in for it (its typo corrections).
using QueryWords = std::vector<std::vector<std::string>>;

class TextIndex {
 public:
  static std::unique_ptr<TextIndex> make(db::Engine engine);
  virtual ~TextIndex() = default;

  // Replaces the words of these documents (whose rows exist).
  virtual void put(db::Tx& tx, const TextTable& t, const DocWords& docs) = 0;
  // Before the documents' rows go.
  virtual void remove(db::Tx& tx, const TextTable& t, const std::vector<int64_t>& docs) = 0;
  virtual void clear(db::Tx& tx, const TextTable& t) = 0;
  // After a rebuild: SQLite merges the FTS5 segments into one (faster
  // queries); PostgreSQL's autovacuum keeps its GIN index itself.
  virtual void optimize(db::Tx& tx, const TextTable& t) = 0;
  // Before a rebuild's writes (souq search reindex, souq seed: processes of
  // their own): SQLite's page cache of the writing connection grows to hold
  // the index's B-trees (a rebuild writes at random into a dozen of them;
  // with the default 2 MB most of its time went on reading pages back).
  virtual void bulk(db::Tx& tx) = 0;

  // SQL for the documents that match, with the document table as `d`:
  // "SELECT … FROM {from} WHERE {where}", ranked by {score} (higher is
  // better). `where` and `score` read only the words' table (TextTable::fts,
  // by that name), whose document is `doc`: a match on words alone is ranked
  // there, without reading a document row per match.
  struct Match {
    std::string from, where, score, doc;
  };
  virtual Match match(const TextTable& t, const QueryWords& query, db::Params& params) = 0;
  // True when some document has this very word.
  virtual bool contains(db::Tx& tx, const TextTable& t, const std::string& word) = 0;

};

}  // namespace souq::search
