// A progress line on a terminal (stderr), redrawn at most every 100 ms, and nothing when stderr is
// not a terminal (piped, CI) or with --quiet: commands print their summary on stdout instead.
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace nexus::cli {

inline std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "--:--";
  const auto t = std::int64_t(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
                   : fmt::format("{}:{:02}", t / 60, t % 60);
}

/// The one progress bar of the command line. `delay_s`: drawn only once the task has run that long
/// (quick tasks show nothing); `erase`: the line disappears when done instead of staying.
class progress_line {
 public:
  explicit progress_line(bool quiet, double delay_s = 0, bool erase = false)
      : on_(!quiet && ::isatty(STDERR_FILENO)), erase_(erase), delay_(delay_s) {}
  ~progress_line() { finish(); }
  bool on() const { return on_; }
  /// Draws "[#####.....]  42% | text" unless the last draw is under 100 ms old (the end is always drawn).
  void show(double fraction, const std::string& text) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - start_).count() < delay_) return;
    if (now - last_ < std::chrono::milliseconds(100) && fraction < 1) return;
    last_ = now;
    const int width = 24, filled = int(std::clamp(fraction, 0.0, 1.0) * width);
    fmt::print(stderr, "\r\033[K[{}{}] {:3.0f}% | {}", std::string(filled, '#'), std::string(width - filled, '.'),
               100 * fraction, text);
    std::fflush(stderr);
    drawn_ = true;
  }
  /// Ends the line (before the summary is printed).
  void finish() {
    if (drawn_) fmt::print(stderr, "{}", erase_ ? "\r\033[K" : "\n");
    drawn_ = false;
  }

 private:
  bool on_, erase_;
  double delay_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now() - std::chrono::seconds(1);
};

/// Counted steps ("parity 3/30 gemma2") on a progress_line that appears after a second and is
/// erased when done.
class step_progress {
 public:
  step_progress(std::string label, std::size_t total)
      : label_(std::move(label)), total_(total), line_(false, 1.0, true) {}
  void update(std::size_t done, const std::string& what) {
    line_.show(total_ ? double(done) / double(total_) : 1.0, fmt::format("{} {}/{} {}", label_, done, total_, what));
  }

 private:
  std::string label_;
  std::size_t total_;
  progress_line line_;
};

/// The progress of hashing large files (io/sha256.hpp's hash_progress sink): a line that appears once a
/// file has taken half a second and is erased when it is done.
class hash_progress_line {
 public:
  void operator()(const std::string& path, std::uint64_t done, std::uint64_t total) {
    if (path != path_ || !line_) line_.emplace(false, 0.5, true), path_ = path;
    constexpr double mib = 1 << 20;
    line_->show(total ? double(done) / double(total) : 1.0,
                fmt::format("sha256 {} {:.0f}/{:.0f} MiB", path, double(done) / mib, double(total) / mib));
    if (done >= total) line_.reset();
  }

 private:
  std::string path_;
  std::optional<progress_line> line_;
};

}  // namespace nexus::cli
