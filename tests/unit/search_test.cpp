// Words as search sees them, typo distances and price buckets: what both
// engines' indexes are given, so what both find.
#include <gtest/gtest.h>

#include "modules/search/tables.hpp"
#include "modules/search/text.hpp"

using namespace souq::search;

namespace {
int distance(const std::string& a, const std::string& b, int max) { return edit_distance(code_points(a), code_points(b), max); }
}  // namespace

TEST(SearchWords, LowerCasesFoldsAccentsAndSplitsOnWhatIsNotALetterOrDigit) {
  EXPECT_EQ(words("Wireless Bluetooth-Headphones, 2nd GEN!"),
            (std::vector<std::string>{"wireless", "bluetooth", "headphones", "2nd", "gen"}));
  EXPECT_EQ(words("Crème brûlée à Paris"), (std::vector<std::string>{"creme", "brulee", "a", "paris"}));
  EXPECT_EQ(words("Straße Øresund Łódź"), (std::vector<std::string>{"strasse", "oresund", "lodz"}));
  // × and ÷ separate, as punctuation does.
  EXPECT_EQ(words("3×4"), (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(words("  \t\n"), std::vector<std::string>{});
  EXPECT_EQ(words("🎧 emoji🎧sep"), (std::vector<std::string>{"emoji", "sep"}));
}

TEST(SearchWords, FoldsArabicLetterVariantsMarksAndDigits) {
  // Alef with hamza and madda become bare alef, teh marbuta heh, alef maqsura yeh.
  EXPECT_EQ(words("أحمد"), words("احمد"));
  EXPECT_EQ(words("إسلام آمن"), words("اسلام امن"));
  EXPECT_EQ(words("مدرسة"), words("مدرسه"));
  EXPECT_EQ(words("مستشفى"), words("مستشفي"));
  // Tashkeel and tatweel vanish; Arabic-Indic digits are digits.
  EXPECT_EQ(words("سَيّـارة"), words("سيارة"));
  EXPECT_EQ(words("٢٠٢٦"), (std::vector<std::string>{"2026"}));
  EXPECT_EQ(words("۱۲۳"), (std::vector<std::string>{"123"}));
  // The Arabic comma and question mark separate.
  EXPECT_EQ(words("هاتف،شاحن؟").size(), 2u);
}

TEST(SearchWords, FoldsGreekCyrillicAndFullwidth) {
  EXPECT_EQ(words("ΑΘΗΝΑ"), words("αθηνα"));
  EXPECT_EQ(words("МОСКВА Ёлка"), words("москва ёлка"));
  EXPECT_EQ(words("ＡＢＣ１２３"), (std::vector<std::string>{"abc123"}));
}

TEST(SearchWords, LeavesOutOverlongWordsAndInvalidBytes) {
  std::string long_word(65, 'a');
  EXPECT_EQ(words("short " + long_word + " end"), (std::vector<std::string>{"short", "end"}));
  EXPECT_EQ(words(std::string(64, 'b')).size(), 1u);
  // A stray continuation byte separates, it never joins or crashes.
  EXPECT_EQ(words("ab\x80" "cd"), (std::vector<std::string>{"ab", "cd"}));
  EXPECT_EQ(words("\xff\xfe"), std::vector<std::string>{});
}

TEST(SearchWords, FoldMakesFilterKeys) {
  EXPECT_EQ(fold("Wi-Fi"), "wi fi");
  EXPECT_EQ(fold("  Sony  "), "sony");
  EXPECT_EQ(fold("CAIRO"), fold("cairo"));
  EXPECT_EQ(fold("القاهرة"), fold("القاهره"));
  EXPECT_EQ(fold("---"), "");
}

TEST(SearchTypos, EditDistanceCountsInsertsDeletesSubstitutionsAndSwaps) {
  EXPECT_EQ(distance("headphones", "headphones", 2), 0);
  EXPECT_EQ(distance("hedphones", "headphones", 2), 1);    // a letter left out
  EXPECT_EQ(distance("headphonez", "headphones", 2), 1);   // one wrong
  EXPECT_EQ(distance("haedphones", "headphones", 2), 1);   // two swapped
  EXPECT_EQ(distance("headphonesx", "headphones", 2), 1);  // one more
  EXPECT_EQ(distance("hdphones", "headphones", 2), 2);
  // Beyond the budget: max + 1, however far.
  EXPECT_EQ(distance("keyboard", "headphones", 2), 3);
  EXPECT_EQ(distance("a", "abcdef", 1), 2);
  // Letters, not bytes: one Arabic letter is one edit.
  EXPECT_EQ(distance("سيارة", "سياره", 1), 1);
  EXPECT_EQ(distance("", "", 0), 0);
}

TEST(SearchTypos, BudgetGrowsWithTheWordAndSparesNumbers) {
  EXPECT_EQ(typo_budget(code_points("shoe")), 0);   // under 5 letters: exact
  EXPECT_EQ(typo_budget(code_points("shoes")), 1);
  EXPECT_EQ(typo_budget(code_points("headphon")), 2);
  EXPECT_EQ(typo_budget(code_points("iphone13")), 0);  // model numbers are exact
  EXPECT_TRUE(in_vocabulary(code_points("desk")));
  EXPECT_FALSE(in_vocabulary(code_points("tv")));
  EXPECT_FALSE(in_vocabulary(code_points("s23ultra")));
}

TEST(SearchFacets, PriceBucketsAreOneTwoFiveTimesAPowerOfTen) {
  EXPECT_EQ(price_bucket(0), 0);
  EXPECT_EQ(price_bucket(1), 1);
  EXPECT_EQ(price_bucket(1999), 1000);
  EXPECT_EQ(price_bucket(2000), 2000);
  EXPECT_EQ(price_bucket(4999), 2000);
  EXPECT_EQ(price_bucket(5000), 5000);
  EXPECT_EQ(price_bucket(9999), 5000);
  EXPECT_EQ(price_bucket(10000), 10000);
  EXPECT_EQ(price_bucket_end(1000), 2000);
  EXPECT_EQ(price_bucket_end(2000), 5000);
  EXPECT_EQ(price_bucket_end(5000), 10000);
  // Every price falls in [bucket, end).
  for (int64_t p : {1, 7, 19, 250, 999, 123456, 999999999}) {
    EXPECT_LE(price_bucket(p), p);
    EXPECT_GT(price_bucket_end(price_bucket(p)), p);
  }
}
