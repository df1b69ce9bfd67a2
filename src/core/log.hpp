// Structured logging: one JSON object per line on stdout. The logger is the
// one global the program has (ARCHITECTURE.md rule 6).
#pragma once
#include <nlohmann/json.hpp>
#include <string_view>

namespace souq::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

void init(Level level);
bool parse_level(std::string_view text, Level& out);
bool enabled(Level level);
// Writes {"ts","level","msg", ...fields}. `fields` must be an object or null.
void write(Level level, std::string_view msg, const nlohmann::json& fields = nullptr);
void flush();
// Writes what is queued and stops the logging thread (at exit).
void shutdown();

inline void debug(std::string_view msg, const nlohmann::json& fields = nullptr) { write(Level::debug, msg, fields); }
inline void info(std::string_view msg, const nlohmann::json& fields = nullptr) { write(Level::info, msg, fields); }
inline void warn(std::string_view msg, const nlohmann::json& fields = nullptr) { write(Level::warn, msg, fields); }
inline void error(std::string_view msg, const nlohmann::json& fields = nullptr) { write(Level::error, msg, fields); }

}  // namespace souq::log
