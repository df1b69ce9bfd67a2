#include <gtest/gtest.h>

#include "modules/notifications/module.hpp"

using namespace souq;
using namespace souq::notifications;

TEST(NotificationTemplates, RendersValuesAndIsolatesThemInRightToLeftText) {
  std::map<std::string, std::string> v = {{"seller_name", "Ali"}, {"price", "1,250.00 EGP"}};
  EXPECT_EQ(render("{{seller_name}} offered {{price}}.", v, false), "Ali offered 1,250.00 EGP.");
  EXPECT_EQ(render("قدّم {{seller_name}} عرضًا بقيمة {{ price }}.", v, true),
            "قدّم \u2068Ali\u2069 عرضًا بقيمة \u20681,250.00 EGP\u2069.");
  // An Arabic name in English text is isolated too; a missing value is left out.
  EXPECT_EQ(render("From {{seller_name}}{{nothing}}", {{"seller_name", "علي"}}, false), "From \u2068علي\u2069");
  // A value carrying a bidi override is isolated, so the override ends with it.
  EXPECT_EQ(render("From {{seller_name}} today", {{"seller_name", "\u202Eevil"}}, false),
            "From \u2068\u202Eevil\u2069 today");
  // Single braces are text.
  EXPECT_EQ(render("{a} {{seller_name}}", v, false), "{a} Ali");
}

TEST(NotificationTemplates, ChecksPlaceholders) {
  std::vector<std::string> unknown;
  EXPECT_EQ(check_placeholders("Hi {{seller_name}} {{price}}", {"seller_name", "price"}, unknown), "");
  EXPECT_TRUE(unknown.empty());
  EXPECT_EQ(check_placeholders("{{sellr_name}} {{x}} {{x}}", {"seller_name"}, unknown), "");
  EXPECT_EQ(unknown, (std::vector<std::string>{"sellr_name", "x"}));
  EXPECT_NE(check_placeholders("{{open", {}, unknown), "");
  EXPECT_NE(check_placeholders("close}}", {}, unknown), "");
  EXPECT_NE(check_placeholders("{{Not A Name}}", {}, unknown), "");
}

TEST(NotificationTemplates, EveryBuiltInHasEnglishAndArabicAndOnlyItsVariables) {
  for (const auto& t : built_in_templates()) {
    ASSERT_TRUE(t.text.count("en")) << t.type;
    ASSERT_TRUE(t.text.count("ar")) << t.type;
    for (const auto& [locale, text] : t.text) {
      std::vector<std::string> unknown;
      EXPECT_EQ(check_placeholders(text.first, t.variables, unknown), "") << t.type;
      EXPECT_EQ(check_placeholders(text.second, t.variables, unknown), "") << t.type;
      EXPECT_TRUE(unknown.empty()) << t.type << " " << locale << " names " << unknown.front();
    }
  }
}

TEST(NotificationTemplates, LocalesFallBackToTheLanguageThenEnglish) {
  EXPECT_EQ(locale_chain("ar-EG"), (std::vector<std::string>{"ar-EG", "ar", "en"}));
  EXPECT_EQ(locale_chain("en"), (std::vector<std::string>{"en"}));
  EXPECT_TRUE(is_rtl_locale("ar-EG"));
  EXPECT_TRUE(is_rtl_locale("he"));
  EXPECT_FALSE(is_rtl_locale("en-US"));
  EXPECT_FALSE(is_rtl_locale("arn"));  // Mapudungun is not Arabic
}

TEST(NotificationTemplates, FormatsMoneyFromMinorUnits) {
  EXPECT_EQ(money_text(125000, "EGP"), "1,250.00 EGP");
  EXPECT_EQ(money_text(5, "USD"), "0.05 USD");
  EXPECT_EQ(money_text(1234567, "JPY"), "1,234,567 JPY");
  EXPECT_EQ(money_text(1500, "KWD"), "1.500 KWD");
  EXPECT_EQ(money_text(-100050, "EGP"), "-1,000.50 EGP");
  EXPECT_EQ(money_text(INT64_MIN, "USD"), "-92,233,720,368,547,758.08 USD");
}

TEST(NotificationEmail, EncodesNonAsciiHeadersBetweenCharacters) {
  EXPECT_EQ(encode_header_word("Plain subject"), "Plain subject");
  std::string arabic;
  for (int i = 0; i < 40; ++i) arabic += "ع";  // 80 bytes: two encoded words
  std::string encoded = encode_header_word(arabic);
  auto fold = encoded.find("\r\n ");
  ASSERT_NE(fold, std::string::npos);
  EXPECT_EQ(encoded.rfind("=?UTF-8?B?", 0), 0u);
  EXPECT_LE(fold, 75u);
}

TEST(NotificationEmail, QuotesNamesWithSpecials) {
  EmailMessage m{"a@example.com", "Ali, \"the\" CEO", "Hi", "Text", "dlv_2"};
  std::string text = format_email(m, "Souq Market <no-reply@souq.example>", "Mon, 23 Nov 2026 10:00:00 +0000");
  EXPECT_NE(text.find("To: \"Ali, \\\"the\\\" CEO\" <a@example.com>\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("From: Souq Market <no-reply@souq.example>\r\n"), std::string::npos);
}

TEST(NotificationEmail, FormatsAPlainTextMessage) {
  EmailMessage m{"buyer@example.com", "منى", "عرض جديد", "Line one\nLine two", "dlv_1"};
  std::string text = format_email(m, "Souq <no-reply@souq.example>", "Mon, 23 Nov 2026 10:00:00 +0000");
  EXPECT_NE(text.find("From: Souq <no-reply@souq.example>\r\n"), std::string::npos);
  EXPECT_NE(text.find("To: =?UTF-8?B?"), std::string::npos);
  EXPECT_NE(text.find("Subject: =?UTF-8?B?"), std::string::npos);
  EXPECT_NE(text.find("Message-ID: <dlv_1@souq.example>\r\n"), std::string::npos);
  EXPECT_NE(text.find("Content-Type: text/plain; charset=UTF-8\r\n"), std::string::npos);
  EXPECT_NE(text.find("\r\n\r\nTGluZSBvbmUNCkxpbmUgdHdv\r\n"), std::string::npos);  // base64 of the CRLF text
}
