// `nexus extract`: several teachers over a corpus into a feature store (nexus/fusion/extract.hpp),
// with a progress line on a terminal (documents, tokens/s, time left) and nothing when piped.
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "nexus/fusion/extract.hpp"

namespace nexus::cli {

struct extract_args {
  std::vector<std::string> teachers, corpus;
  std::string layers = "-1", dtype = "bf16", out, shard_size = "64MiB", budget = "0";
  std::int64_t top_k = 0, context = 512, chunk_rows = 0;
  int threads = 0;
  bool quiet = false;
};

inline std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  for (std::size_t at = 0; at <= s.size();) {
    const auto comma = std::min(s.find(',', at), s.size());
    out.push_back(s.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

inline std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "--:--";
  const auto t = std::int64_t(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
                   : fmt::format("{}:{:02}", t / 60, t % 60);
}

inline int extract_store(const extract_args& a) {
  fusion::extract_options o;
  for (const auto& t : a.teachers) o.teachers.emplace_back(t);
  for (const auto& c : a.corpus) o.corpus.emplace_back(c);
  o.layers = split_commas(a.layers);
  o.top_k = a.top_k;
  o.dtype = a.dtype;
  o.context = a.context;
  o.out = a.out;
  o.shard_size = fusion::parse_bytes(a.shard_size);
  o.budget = fusion::parse_bytes(a.budget);
  o.cpu.threads = a.threads;
  o.chunk_rows = a.chunk_rows;
  const bool tty = !a.quiet && ::isatty(STDERR_FILENO);
  auto last = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  if (tty)
    o.progress = [&](const fusion::extract_progress& p) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last < std::chrono::milliseconds(100) && p.tokens_done < p.tokens) return;
      last = now;
      const double rate = p.seconds > 0 ? double(p.tokens_done) / p.seconds : 0;
      const double frac = p.tokens ? double(p.tokens_done) / double(p.tokens) : 1;
      const int width = 24, filled = int(frac * width);
      fmt::print(stderr, "\r[{}{}] {:3.0f}% | documents {}/{} | {:.0f} tok/s | left {}   ", std::string(filled, '#'),
                 std::string(width - filled, '.'), 100 * frac, p.documents_done, p.documents, rate,
                 format_duration(rate > 0 ? double(p.tokens - p.tokens_done) / rate : -1));
    };
  const auto r = fusion::extract(o);
  if (tty) fmt::print(stderr, "\n");
  fmt::print(
      "extract {}: {} windows in {} shards ({} already there, {} written); {} tokens in {:.1f} s ({:.0f} tok/s)\n",
      a.out, r.windows, r.shards, r.shards_resumed, r.shards_written, r.tokens_forwarded, r.seconds,
      r.seconds > 0 ? double(r.tokens_forwarded) / r.seconds : 0.0);
  fmt::print("{}\n", r.resident);
  return r.complete ? 0 : 1;
}

}  // namespace nexus::cli
