// Email providers: dev (records) and SMTP over libcurl. Messages are plain
// UTF-8 text, base64 in transit, with RFC 2047 headers for names and
// subjects beyond ASCII (Arabic subjects arrive intact).
#include <curl/curl.h>
#include <sodium.h>

#include <ctime>

#include "core/log.hpp"
#include "modules/notifications/module.hpp"

namespace souq::notifications {
namespace {

std::string base64(std::string_view bytes) {
  std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

bool plain_ascii(const std::string& s) {
  for (unsigned char c : s)
    if (c >= 0x7F || c < 0x20) return false;
  return true;
}

// "Name <a@b>" → {"Name", "a@b"}; "a@b" → {"", "a@b"}.
std::pair<std::string, std::string> split_address(const std::string& from) {
  auto open = from.find('<'), close = from.rfind('>');
  if (open == std::string::npos || close == std::string::npos || close < open) return {"", from};
  std::string name = from.substr(0, open);
  while (!name.empty() && name.back() == ' ') name.pop_back();
  if (name.size() >= 2 && name.front() == '"' && name.back() == '"') name = name.substr(1, name.size() - 2);
  return {name, from.substr(open + 1, close - open - 1)};
}

// RFC 5322: a name of atoms as it is; with specials (", . < …) as a quoted
// string; beyond ASCII as encoded words.
std::string mailbox(const std::string& name, const std::string& address) {
  if (name.empty()) return "<" + address + ">";
  if (!plain_ascii(name)) return encode_header_word(name) + " <" + address + ">";
  if (name.find_first_of("\"\\()<>[]:;@,.") == std::string::npos) return name + " <" + address + ">";
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\" <" + address + ">";
}

class DevEmail final : public EmailProvider {
 public:
  std::string name() const override { return "dev"; }
  std::string send(const EmailMessage& m) override {
    log::info("email (dev provider: recorded, not sent)", {{"to", m.to}, {"subject", m.subject}});
    return "recorded";
  }
};

struct Upload {
  const std::string* data;
  size_t offset = 0;
};

size_t read_upload(char* buffer, size_t size, size_t count, void* user) {
  auto* u = static_cast<Upload*>(user);
  size_t n = std::min(size * count, u->data->size() - u->offset);
  std::memcpy(buffer, u->data->data() + u->offset, n);
  u->offset += n;
  return n;
}

class SmtpEmail final : public EmailProvider {
 public:
  explicit SmtpEmail(const Options& o) : o_(o) {
    if (o_.smtp_url.rfind("smtp://", 0) != 0 && o_.smtp_url.rfind("smtps://", 0) != 0)
      throw std::invalid_argument("--email-provider smtp needs --smtp-url smtp://host:port or smtps://host:port");
    if (split_address(o_.email_from).second.find('@') == std::string::npos)
      throw std::invalid_argument("--email-from needs an address: \"Name <address@domain>\"");
    curl_global_init(CURL_GLOBAL_DEFAULT);
  }
  std::string name() const override { return "smtp"; }

  std::string send(const EmailMessage& m) override {
    char date[64];
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    std::string message = format_email(m, o_.email_from, date);
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) throw std::runtime_error("curl_easy_init failed");
    CURL* c = curl.get();
    std::string from = "<" + split_address(o_.email_from).second + ">", to = "<" + m.to + ">";
    curl_slist* recipients = curl_slist_append(nullptr, to.c_str());
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> guard(recipients, curl_slist_free_all);
    Upload upload{&message};
    curl_easy_setopt(c, CURLOPT_URL, o_.smtp_url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    // With credentials, STARTTLS is required: a server (or someone between)
    // that does not offer it must not receive the password in clear.
    if (o_.smtp_url.rfind("smtp://", 0) == 0)
      curl_easy_setopt(c, CURLOPT_USE_SSL, long(o_.smtp_user.empty() ? CURLUSESSL_TRY : CURLUSESSL_ALL));
    if (!o_.smtp_user.empty()) {
      curl_easy_setopt(c, CURLOPT_USERNAME, o_.smtp_user.c_str());
      curl_easy_setopt(c, CURLOPT_PASSWORD, o_.smtp_password.c_str());
    }
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from.c_str());
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, recipients);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_upload);
    curl_easy_setopt(c, CURLOPT_READDATA, &upload);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE, long(message.size()));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode code = curl_easy_perform(c);
    if (code != CURLE_OK) {
      long reply = 0;
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply);
      std::string why = std::string("smtp: ") + curl_easy_strerror(code) +
                        (reply ? " (server said " + std::to_string(reply) + ")" : "");
      if (reply >= 500 && reply < 600) throw EmailRejected(why);
      throw std::runtime_error(why);
    }
    return "sent";
  }

 private:
  Options o_;
};

}  // namespace

std::string encode_header_word(const std::string& text) {
  if (plain_ascii(text)) return text;
  // Encoded words of at most 75 characters: 45 bytes of text each, cut
  // between characters, never inside one.
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t end = std::min(text.size(), i + 45);
    while (end < text.size() && end > i && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64(std::string_view(text).substr(i, end - i)) + "?=";
    i = end;
  }
  return out;
}

std::string format_email(const EmailMessage& m, const std::string& from, const std::string& date) {
  auto [from_name, from_address] = split_address(from);
  std::string text = m.text;
  // Lines end in CRLF on the wire.
  std::string crlf;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) crlf += '\r';
    crlf += text[i];
  }
  std::string body = base64(crlf), wrapped;
  for (size_t i = 0; i < body.size(); i += 76) wrapped += body.substr(i, 76) + "\r\n";
  std::string subject = m.subject;
  for (char& c : subject)
    if (c == '\r' || c == '\n') c = ' ';
  std::string out;
  out += "Date: " + date + "\r\n";
  out += "From: " + mailbox(from_name, from_address) + "\r\n";
  out += "To: " + mailbox(m.to_name, m.to) + "\r\n";
  out += "Subject: " + encode_header_word(subject) + "\r\n";
  auto at = from_address.find('@');
  out += "Message-ID: <" + m.message_id + "@" + (at == std::string::npos ? "souq" : from_address.substr(at + 1)) + ">\r\n";
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: text/plain; charset=UTF-8\r\n";
  out += "Content-Transfer-Encoding: base64\r\n";
  out += "Auto-Submitted: auto-generated\r\n";
  out += "\r\n";
  out += wrapped;
  return out;
}

std::unique_ptr<EmailProvider> make_email_provider(const Options& options) {
  if (options.email_provider == "dev") return std::make_unique<DevEmail>();
  if (options.email_provider == "smtp") return std::make_unique<SmtpEmail>(options);
  throw std::invalid_argument("--email-provider must be dev or smtp, not " + options.email_provider);
}

}  // namespace souq::notifications
