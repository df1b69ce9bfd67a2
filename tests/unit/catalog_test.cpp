// The product-page cache: what a change forgets, and reads that raced a change.
#include <gtest/gtest.h>

#include "modules/catalog/product_cache.hpp"

using souq::catalog::ProductCache;

namespace {
auto page(const char* text) { return std::make_shared<const std::string>(text); }
}  // namespace

TEST(ProductCache, ForgettingASellerDropsEveryPageOfTheirsAndRefusesReadsThatRacedIt) {
  ProductCache cache(std::chrono::seconds(60), 10);
  cache.store("prod_a", "usr_1", page("a"), cache.ticket());
  cache.store("prod_b", "usr_1", page("b"), cache.ticket());
  cache.store("prod_c", "usr_2", page("c"), cache.ticket());
  ASSERT_TRUE(cache.find("prod_a"));
  uint64_t before = cache.ticket();  // a read of prod_d starts
  cache.forget_seller("usr_1");
  EXPECT_FALSE(cache.find("prod_a"));
  EXPECT_FALSE(cache.find("prod_b"));
  EXPECT_EQ(*cache.find("prod_c"), "c");
  // The read that began before the seller changed is not kept.
  cache.store("prod_d", "usr_1", page("d"), before);
  EXPECT_FALSE(cache.find("prod_d"));
  cache.store("prod_d", "usr_1", page("d"), cache.ticket());
  EXPECT_EQ(*cache.find("prod_d"), "d");
  // Evicting by capacity keeps the seller index right: forgetting later drops nothing else.
  for (int i = 0; i < 12; ++i) cache.store("prod_x" + std::to_string(i), "usr_3", page("x"), cache.ticket());
  EXPECT_EQ(cache.stats().size, 10u);
  cache.forget_seller("usr_3");
  EXPECT_EQ(cache.stats().size, 0u);
}

TEST(ProductCache, ForgettingEverythingRefusesEveryReadThatBeganBefore) {
  ProductCache cache(std::chrono::seconds(60), 10);
  cache.store("prod_a", "usr_1", page("a"), cache.ticket());
  uint64_t before = cache.ticket();
  cache.forget_all();
  EXPECT_FALSE(cache.find("prod_a"));
  cache.store("prod_b", "usr_2", page("b"), before);
  EXPECT_FALSE(cache.find("prod_b"));
  cache.store("prod_b", "usr_2", page("b"), cache.ticket());
  EXPECT_EQ(*cache.find("prod_b"), "b");
  // A page forgotten by id is refused too, whoever its seller.
  uint64_t reading = cache.ticket();
  cache.forget("prod_c");
  cache.store("prod_c", "usr_3", page("c"), reading);
  EXPECT_FALSE(cache.find("prod_c"));
}
