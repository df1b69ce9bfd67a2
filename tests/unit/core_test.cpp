#include <gtest/gtest.h>

#include <set>

#include "core/envelope.hpp"
#include "core/error.hpp"
#include "core/id.hpp"
#include "core/json.hpp"
#include "core/money.hpp"
#include "core/time.hpp"

using namespace souq;

TEST(Id, HasPrefixAndSortsByCreation) {
  std::vector<std::string> ids;
  for (int i = 0; i < 2000; ++i) ids.push_back(new_id("req"));
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_LT(ids[i - 1], ids[i]) << "at " << i;
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size());
  EXPECT_EQ(ids[0].substr(0, 4), "req_");
  EXPECT_EQ(ids[0].size(), 4u + 26u);
  EXPECT_TRUE(is_id(ids[0], "req"));
  EXPECT_FALSE(is_id(ids[0], "usr"));
  EXPECT_TRUE(is_id(ids[0]));
}

TEST(Id, RejectsMalformed) {
  EXPECT_FALSE(is_id("req_"));
  EXPECT_FALSE(is_id("req_0123456789abcdefghjkmnpqrst"));  // 27 characters
  EXPECT_FALSE(is_id("req_0123456789abcdefghjkmnpqrI"));   // 'I' is not Crockford base32 lower case
  EXPECT_FALSE(is_id("_0123456789abcdefghjkmnpqrs"));
  EXPECT_FALSE(is_id("req_8123456789abcdefghjkmnpqrs"));   // above 2^128
  EXPECT_TRUE(is_id("req_0123456789abcdefghjkmnpqrs"));
}

TEST(Id, TimestampPrefixFollowsTheClock) {
  auto a = new_id("x");
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  auto b = new_id("x");
  EXPECT_LT(a.substr(2, 10), b.substr(2, 10));  // the first 10 digits carry the millisecond time
}

TEST(Money, AddsAndRefusesMixedCurrencies) {
  Money a(1050, "EGP"), b(250, "EGP");
  EXPECT_EQ((a + b).minor(), 1300);
  EXPECT_EQ((a - b).minor(), 800);
  EXPECT_THROW(a + Money(1, "USD"), MoneyError);
  EXPECT_THROW(Money(1, "XYZ"), MoneyError);
}

TEST(Money, DetectsOverflow) {
  Money big(INT64_MAX, "USD");
  EXPECT_THROW(big + Money(1, "USD"), MoneyError);
  EXPECT_THROW(Money(INT64_MIN, "USD") - Money(1, "USD"), MoneyError);
  EXPECT_THROW(big.times(2), MoneyError);
  EXPECT_THROW(-Money(INT64_MIN, "USD"), MoneyError);
}

TEST(Money, BasisPointsRoundHalfAwayFromZero) {
  EXPECT_EQ(Money(1000, "EGP").basis_points(250).minor(), 25);   // 2.5 % of 10.00
  EXPECT_EQ(Money(10, "EGP").basis_points(500).minor(), 1);      // 0.5 → 1
  EXPECT_EQ(Money(-10, "EGP").basis_points(500).minor(), -1);
  EXPECT_EQ(Money(9, "EGP").basis_points(500).minor(), 0);       // 0.45 → 0
}

TEST(Money, AllocateAddsUpExactly) {
  auto parts = Money(100, "USD").allocate(3);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].minor(), 34);
  EXPECT_EQ(parts[1].minor(), 33);
  EXPECT_EQ(parts[2].minor(), 33);
  auto negative = Money(-100, "USD").allocate(3);
  EXPECT_EQ(negative[0].minor() + negative[1].minor() + negative[2].minor(), -100);
}

TEST(Money, FormatsWithTheCurrencyExponent) {
  EXPECT_EQ(Money(123456, "EGP").to_string(), "1234.56 EGP");
  EXPECT_EQ(Money(-5, "USD").to_string(), "-0.05 USD");
  EXPECT_EQ(Money(1500, "JPY").to_string(), "1500 JPY");
  EXPECT_EQ(Money(1234, "KWD").to_string(), "1.234 KWD");
}

TEST(Time, FormatsAndParsesRfc3339) {
  auto t = parse_time("2026-11-22T10:20:30.456Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(format_time(*t), "2026-11-22T10:20:30.456Z");
  auto offset = parse_time("2026-11-22T12:20:30+02:00");
  ASSERT_TRUE(offset);
  EXPECT_EQ(format_time(*offset), "2026-11-22T10:20:30.000Z");
  EXPECT_FALSE(parse_time("2026-02-30T00:00:00Z"));
  EXPECT_FALSE(parse_time("2026-11-22 10:20"));
  EXPECT_FALSE(parse_time("2026-11-22T10:20:30"));
  EXPECT_FALSE(parse_time("2026-11-22T10:20:30Zjunk"));
  EXPECT_EQ(now_text().size(), 24u);
}

TEST(Json, ParsesAndBoundsDepth) {
  EXPECT_EQ(parse_json(R"({"a":[1,2]})")["a"][1], 2);
  std::string deep(70, '[');
  deep += std::string(70, ']');
  try {
    parse_json(deep);
    FAIL() << "expected invalid_json";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.code(), "invalid_json");
  }
  std::string ok_depth(60, '[');
  ok_depth += std::string(60, ']');
  EXPECT_NO_THROW(parse_json(ok_depth));
}

TEST(Json, RejectsMalformedAndInvalidUtf8) {
  for (std::string bad : {"{", "{\"a\":}", "[1,]", "{} x", "\"\xff\xfe\"", ""}) {
    try {
      parse_json(bad);
      FAIL() << "accepted: " << bad;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.code(), "invalid_json") << bad;
    }
  }
}

TEST(Envelope, SuccessAndErrorShapes) {
  auto ok = success_envelope({{"x", 1}}, "rid_1", {{"next_cursor", "c"}});
  EXPECT_EQ(ok["status"], "success");
  EXPECT_EQ(ok["data"]["x"], 1);
  EXPECT_EQ(ok["meta"]["request_id"], "rid_1");
  EXPECT_EQ(ok["meta"]["next_cursor"], "c");
  EXPECT_TRUE(parse_time(ok["meta"]["timestamp"].get<std::string>()));
  auto err = error_envelope(ApiError::conflict("offer_taken", "Taken", {{"offer", "o1"}}), "rid_2");
  EXPECT_EQ(err["status"], "error");
  EXPECT_EQ(err["error"]["code"], "offer_taken");
  EXPECT_EQ(err["error"]["message"], "Taken");
  EXPECT_EQ(err["error"]["details"]["offer"], "o1");
  EXPECT_FALSE(error_envelope(ApiError::not_found(), "r")["error"].contains("details"));
}

#include "core/log.hpp"

TEST(Log, JsonStringsStayValidWhateverTheBytes) {
  std::string out;
  log::append_json_string(out, "a\"b\\c\n\x01 تمر \xff\xfe end \xed\xa0\x80");
  auto parsed = json::parse(out);  // throws if the line is not valid JSON
  EXPECT_EQ(parsed.get<std::string>(), "a\"b\\c\n\x01 تمر \xEF\xBF\xBD\xEF\xBF\xBD end \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

#include <fcntl.h>
#include <unistd.h>

#include <thread>

TEST(Log, ManyThreadsLoggingAndFlushingFinishWithEveryLineWritten) {
  char path[] = "/tmp/souq-log-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  log::init(log::Level::info, fd);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([t] {
      for (int i = 0; i < 3000; ++i) {
        // Warnings flush at once, so flushes race with appends and each other.
        if (i % 7 == 0) log::warn("w", {{"t", t}, {"i", i}});
        else log::Line(log::Level::info, "i").num("t", int64_t(t)).num("i", int64_t(i)).write();
        if (i % 500 == 0) log::flush();
      }
    });
  for (auto& th : threads) th.join();
  log::shutdown();
  lseek(fd, 0, SEEK_SET);
  std::string text;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) text.append(buf, size_t(n));
  close(fd);
  unlink(path);
  size_t lines = 0, start = 0;
  std::vector<int> last(8, -1);
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1, ++lines) {
    auto line = json::parse(text.substr(start, nl - start));
    int t = line["t"], i = line["i"];
    EXPECT_EQ(i, last[t] + 1) << "lines of one thread stay in order";
    last[t] = i;
  }
  EXPECT_EQ(lines, 8u * 3000u);
}

#include "core/utf8.hpp"

TEST(Utf8, SanitizeReplacesInvalidBytesAndCutsOnABoundary) {
  EXPECT_EQ(utf8::sanitize("ok"), "ok");
  EXPECT_EQ(utf8::sanitize("a\xff" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(utf8::sanitize(std::string("a\0b", 3)), "ab");
  EXPECT_EQ(utf8::sanitize("\xF5\x80\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD") << "F5 never starts UTF-8";
  EXPECT_EQ(utf8::sanitize("تمر", 5), "تم") << "three 2-byte letters cut to 5 bytes keep two whole letters";
  EXPECT_EQ(utf8::sanitize("\xE0\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD") << "overlong";
}
