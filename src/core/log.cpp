#include "core/log.hpp"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "core/time.hpp"
#include "core/utf8.hpp"

namespace souq::log {
namespace {

const char* level_name(Level level) {
  switch (level) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    default: return "off";
  }
}

class Writer {
 public:
  // At exit without log::shutdown() (an exception left main): join, don't terminate.
  ~Writer() { stop(); }

  void start(int fd) {
    std::lock_guard lock(mutex_);
    fd_ = fd;
    if (thread_.joinable()) return;
    stop_ = false;
    thread_ = std::thread([this] { run(); });
  }
  void append(std::string_view line, bool urgent) {
    std::unique_lock lock(mutex_);
    buffer_.append(line);
    buffer_ += '\n';
    if (urgent || buffer_.size() >= kFlushAt || !thread_.joinable()) write_out(lock);
  }
  void flush() {
    std::unique_lock lock(mutex_);
    write_out(lock);
  }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    flush();
  }

 private:
  static constexpr size_t kFlushAt = 64 * 1024;

  // Called with `lock` (on mutex_) held; returns with it held. Locks are
  // always taken write_mutex_ first, then mutex_, so flushers cannot deadlock,
  // and batches reach stdout in the order they were swapped out.
  void write_out(std::unique_lock<std::mutex>& lock) {
    if (buffer_.empty()) return;
    lock.unlock();
    {
      std::lock_guard order(write_mutex_);
      std::string out;
      lock.lock();
      out.swap(buffer_);
      lock.unlock();
      size_t done = 0;
      while (done < out.size()) {
        ssize_t n = ::write(fd_, out.data() + done, out.size() - done);
        if (n <= 0) {
          if (n < 0 && errno == EINTR) continue;
          break;  // stdout is gone; nothing better to do with logs
        }
        done += size_t(n);
      }
    }
    lock.lock();
  }

  void run() {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return stop_; });
      write_out(lock);
    }
  }

  std::mutex mutex_, write_mutex_;
  std::condition_variable cv_;
  std::string buffer_;
  std::thread thread_;
  bool stop_ = false;
  int fd_ = STDOUT_FILENO;
};

std::atomic<int> g_level{int(Level::info)};
Writer& writer() {
  static Writer w;
  return w;
}

void begin_line(std::string& line, Level level, std::string_view msg) {
  line.reserve(256);
  line += R"({"ts":")";
  line += now_text();
  line += R"(","level":")";
  line += level_name(level);
  line += R"(","msg":)";
  append_json_string(line, msg);
}

}  // namespace

void init(Level level, int fd) {
  g_level = int(level);
  writer().start(fd);
}

bool parse_level(std::string_view text, Level& out) {
  for (Level l : {Level::debug, Level::info, Level::warn, Level::error, Level::off})
    if (text == level_name(l)) return out = l, true;
  return false;
}

bool enabled(Level level) { return level != Level::off && int(level) >= g_level.load(std::memory_order_relaxed); }

void write(Level level, std::string_view msg, const nlohmann::json& fields) {
  if (!enabled(level)) return;
  std::string line;
  begin_line(line, level, msg);
  if (fields.is_object() && !fields.empty()) {
    std::string rest = fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line += ',';
    line.append(rest, 1, rest.size() - 1);  // without the opening brace; keeps the closing one
  } else {
    line += '}';
  }
  writer().append(line, level >= Level::warn);
}

void flush() { writer().flush(); }
void shutdown() { writer().stop(); }

Line::Line(Level level, std::string_view msg) : level_(level), on_(enabled(level)) {
  if (on_) begin_line(text_, level, msg);
}

void Line::key(std::string_view k) {
  text_ += ',';
  append_json_string(text_, k);
  text_ += ':';
}

Line& Line::str(std::string_view k, std::string_view value) {
  if (!on_) return *this;
  key(k);
  append_json_string(text_, value);
  return *this;
}

Line& Line::num(std::string_view k, int64_t value) {
  if (!on_) return *this;
  key(k);
  text_ += std::to_string(value);
  return *this;
}

Line& Line::num(std::string_view k, double value) {
  if (!on_) return *this;
  key(k);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", value);
  text_ += buf;
  return *this;
}

void Line::write() {
  if (!on_) return;
  text_ += '}';
  writer().append(text_, level_ >= Level::warn);
}

void append_json_string(std::string& out, std::string_view value) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < value.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(value[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else if (c < 0x80) {
          out += char(c);
        } else if (size_t n = utf8::sequence_length(value, i)) {
          out.append(value, i, n);
          i += n - 1;
        } else {
          out += "\\ufffd";  // not UTF-8: keep the line valid JSON
        }
    }
  }
  out += '"';
}

}  // namespace souq::log
