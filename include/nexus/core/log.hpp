// What the library says about its work beyond results: which file it opened as what, which cached
// digest it reused, which teacher it loaded or evicted. Messages below the threshold cost one atomic
// load; those above go to a sink (default: "nexus: info: ..." on stderr), which a host program may
// replace. The threshold starts at `warn`; the command line sets it from -v, --log-level or
// NEXUS_LOG_LEVEL.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace nexus::log {

enum class level { error, warn, info, debug };

inline const char* name_of(level l) {
  switch (l) {
    case level::error: return "error";
    case level::warn: return "warn";
    case level::info: return "info";
    case level::debug: return "debug";
  }
  return "?";  // unreachable: every level is named above
}

/// "error", "warn", "info" or "debug"; nullopt for anything else.
inline std::optional<level> parse_level(std::string_view s) {
  for (const auto l : {level::error, level::warn, level::info, level::debug})
    if (s == name_of(l)) return l;
  return std::nullopt;
}

inline std::atomic<int>& threshold_storage() {
  static std::atomic<int> t{int(level::warn)};
  return t;
}
inline level threshold() { return level(threshold_storage().load(std::memory_order_relaxed)); }
inline void set_threshold(level l) { threshold_storage().store(int(l), std::memory_order_relaxed); }
inline bool enabled(level l) { return int(l) <= threshold_storage().load(std::memory_order_relaxed); }

using sink_type = std::function<void(level, std::string_view)>;

inline std::mutex& sink_mutex() {
  static std::mutex m;
  return m;
}
inline sink_type& sink_storage() {
  static sink_type s = [](level l, std::string_view message) {
    fmt::print(stderr, "nexus: {}: {}\n", name_of(l), message);
  };
  return s;
}
/// Replaces where messages go (an empty sink restores stderr); messages are delivered one at a time.
inline void set_sink(sink_type s) {
  const std::lock_guard lock(sink_mutex());
  sink_storage() = s ? std::move(s) : [](level l, std::string_view message) {
    fmt::print(stderr, "nexus: {}: {}\n", name_of(l), message);
  };
}

template <class... Args>
void write(level l, fmt::format_string<Args...> f, Args&&... args) {
  if (!enabled(l)) return;
  const auto message = fmt::format(f, std::forward<Args>(args)...);
  const std::lock_guard lock(sink_mutex());
  sink_storage()(l, message);
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  write(level::warn, f, std::forward<Args>(args)...);
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  write(level::info, f, std::forward<Args>(args)...);
}
template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  write(level::debug, f, std::forward<Args>(args)...);
}

}  // namespace nexus::log
