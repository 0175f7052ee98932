// A progress line on a terminal (stderr), redrawn at most every 100 ms, and nothing when stderr is
// not a terminal (piped, CI) or with --quiet: commands print their summary on stdout instead.
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>

namespace nexus::cli {

inline std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "--:--";
  const auto t = std::int64_t(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
                   : fmt::format("{}:{:02}", t / 60, t % 60);
}

class progress_line {
 public:
  explicit progress_line(bool quiet) : on_(!quiet && ::isatty(STDERR_FILENO)) {}
  ~progress_line() { finish(); }
  bool on() const { return on_; }
  /// Draws "[#####.....]  42% | text" unless the last draw is under 100 ms old (the end is always drawn).
  void show(double fraction, const std::string& text) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(100) && fraction < 1) return;
    last_ = now;
    const int width = 24, filled = int(std::clamp(fraction, 0.0, 1.0) * width);
    fmt::print(stderr, "\r[{}{}] {:3.0f}% | {}   ", std::string(filled, '#'), std::string(width - filled, '.'),
               100 * fraction, text);
    drawn_ = true;
  }
  /// Ends the line (before the summary is printed).
  void finish() {
    if (drawn_) fmt::print(stderr, "\n");
    drawn_ = false;
  }

 private:
  bool on_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now() - std::chrono::seconds(1);
};

}  // namespace nexus::cli
