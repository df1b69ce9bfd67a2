// The module's document tables and how their text is weighted (title words
// count most), shared by the indexer and the queries.
#pragma once
#include <cstdint>

#include "modules/search/text_index.hpp"

namespace souq::search {

inline const TextTable kProductText{"search_products",
                                    "search_products_text",
                                    {{"title", 10.0, 'A'},
                                     {"brand", 5.0, 'B'},
                                     {"category", 3.0, 'B'},
                                     {"attributes", 2.0, 'C'},
                                     {"description", 1.0, 'D'}}};

inline const TextTable kSellerText{"search_sellers",
                                   "search_sellers_text",
                                   {{"name", 10.0, 'A'}, {"city", 3.0, 'B'}, {"description", 1.0, 'D'}}};

// Categories nest at most this deep (catalog): columns cat0 … cat7.
constexpr int kCategoryLevels = 8;

// Price facet buckets: from 1, 2 or 5 times a power of ten to the next of
// those (1 000–1 999, 2 000–4 999, 5 000–9 999, 10 000–19 999 …).
inline int64_t price_bucket(int64_t price) {
  if (price < 1) return 0;
  int64_t power = 1;
  while (price / power >= 10) power *= 10;
  int64_t leading = price / power;
  return (leading >= 5 ? 5 : leading >= 2 ? 2 : 1) * power;
}

// The first price of the next bucket.
inline int64_t price_bucket_end(int64_t start) {
  if (start < 1) return 1;
  int64_t power = 1;
  while (start / power >= 10) power *= 10;
  int64_t leading = start / power;
  return (leading == 1 ? 2 : leading == 2 ? 5 : 10) * power;
}

}  // namespace souq::search
