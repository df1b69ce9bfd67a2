#include "core/log.hpp"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>

#include "core/time.hpp"

namespace souq::log {
namespace {
std::atomic<int> g_level{int(Level::info)};
std::shared_ptr<spdlog::logger> g_logger;

const char* level_name(Level level) {
  switch (level) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    default: return "off";
  }
}
}  // namespace

void init(Level level) {
  g_level = int(level);
  if (g_logger) return;
  // Logging happens on a background thread so that a slow stdout never stalls
  // the I/O threads; when its queue is full, callers wait rather than lose lines.
  spdlog::init_thread_pool(16384, 1);
  auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  g_logger = std::make_shared<spdlog::async_logger>("souq", sink, spdlog::thread_pool(),
                                                    spdlog::async_overflow_policy::block);
  g_logger->set_pattern("%v");
  g_logger->set_level(spdlog::level::trace);
}

bool parse_level(std::string_view text, Level& out) {
  for (Level l : {Level::debug, Level::info, Level::warn, Level::error, Level::off})
    if (text == level_name(l)) return out = l, true;
  return false;
}

bool enabled(Level level) { return int(level) >= g_level.load(std::memory_order_relaxed) && level != Level::off; }

void write(Level level, std::string_view msg, const nlohmann::json& fields) {
  if (!enabled(level)) return;
  std::string line;
  line.reserve(160);
  line += R"({"ts":")";
  line += now_text();
  line += R"(","level":")";
  line += level_name(level);
  line += R"(","msg":)";
  line += nlohmann::json(msg).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (fields.is_object() && !fields.empty()) {
    std::string rest = fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line += ',';
    line.append(rest, 1, rest.size() - 1);  // drop the opening brace; keeps the closing one
  } else {
    line += '}';
  }
  if (g_logger) g_logger->info(line);
  else std::fprintf(stderr, "%s\n", line.c_str());
}

void flush() {
  if (g_logger) g_logger->flush();
}

void shutdown() {
  if (!g_logger) return;
  g_logger->flush();
  g_logger.reset();
  spdlog::shutdown();  // joins the logging thread after it has written every queued line
}

}  // namespace souq::log
