// souq_weighted(fts_table, w0, w1, …): an FTS5 ranking function for the
// search module's tables, registered on every SQLite connection. A match
// scores, for each query word (phrase), the word's rarity (BM25's idf) times
// the weights of the columns that hold it, summed. bm25() also weighs how
// often a word occurs against each document's length, which costs a read of
// the document's sizes per match (a third of a second over 80,000 matches of
// a million products); souq_weighted reads nothing beyond the match itself.
// Search gives FTS5 folded words and short fields (a title, a brand), where
// the fields a word is found in say most of what relevance can.
#pragma once

struct sqlite3;

namespace souq::db {

// True when FTS5 took the function (false: SQLite was built without FTS5).
bool register_weighted_rank(sqlite3* db);

}  // namespace souq::db
