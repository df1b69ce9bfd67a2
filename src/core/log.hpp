// Structured logging: one JSON object per line on stdout. The logger is the
// one global the program has (ARCHITECTURE.md rule 6).
//
// Lines are appended to an in-memory buffer that a background thread writes
// out every 50 ms (or at once when it fills, and at once for warnings and
// errors). A per-line handoff to a logging thread (spdlog's async mode) cost
// 15 % of /healthz throughput in futex wake-ups; a per-line write(2) costs a
// syscall per request. This keeps the I/O threads free of both.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace souq::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

// Starts the writer thread; lines go to `fd` (stdout unless a test says otherwise).
void init(Level level, int fd = 1);
bool parse_level(std::string_view text, Level& out);
bool enabled(Level level);
// Writes {"ts","level","msg", ...fields}. `fields` must be an object or null.
void write(Level level, std::string_view msg, const nlohmann::json& fields = nullptr);
// Writes what is buffered now.
void flush();
// Flushes and stops the writer thread (at exit).
void shutdown();

inline void debug(std::string_view msg, const nlohmann::json& fields = nullptr) { write(Level::debug, msg, fields); }
inline void info(std::string_view msg, const nlohmann::json& fields = nullptr) { write(Level::info, msg, fields); }
inline void warn(std::string_view msg, const nlohmann::json& fields = nullptr) { write(Level::warn, msg, fields); }
inline void error(std::string_view msg, const nlohmann::json& fields = nullptr) { write(Level::error, msg, fields); }

// A log line built field by field without a JSON document, for the lines
// written on every request. Nothing is written unless the level is enabled.
class Line {
 public:
  Line(Level level, std::string_view msg);
  Line& str(std::string_view key, std::string_view value);
  Line& num(std::string_view key, int64_t value);
  Line& num(std::string_view key, double value);
  void write();

 private:
  void key(std::string_view k);
  Level level_;
  bool on_;
  std::string text_;
};

// Appends `value` as a JSON string literal: quoted, escaped, and with bytes
// that are not UTF-8 replaced by U+FFFD so that the line stays valid JSON.
void append_json_string(std::string& out, std::string_view value);

}  // namespace souq::log
