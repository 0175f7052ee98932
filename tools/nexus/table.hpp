// Plain-text tables for the terminal.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

namespace nexus::cli {

/// Columns on a terminal: UTF-8 continuation bytes take no room ("×", "Δ").
inline std::size_t display_width(const std::string& s) {
  return std::size_t(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

inline std::string human(std::int64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{:.2f}B", double(n) / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.2f}M", double(n) / 1e6);
  if (n >= 1'000) return fmt::format("{:.1f}K", double(n) / 1e3);
  return std::to_string(n);
}

/// Prints rows under a header, columns padded; with `mark_differences`, rows whose cells after
/// the first differ are marked '*'. Cells longer than `max_cell` are cut.
inline void print_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                        bool mark_differences = false, std::size_t max_cell = 48) {
  std::vector<std::size_t> width(header.size());
  auto measure = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size(); ++i)
      width[i] = std::max(width[i], std::min(display_width(row[i]), max_cell));
  };
  measure(header);
  for (const auto& r : rows) measure(r);
  auto print = [&](const std::vector<std::string>& row, char mark) {
    std::string line(1, mark);
    for (std::size_t i = 0; i < row.size(); ++i) {
      const auto cell = display_width(row[i]) > max_cell ? row[i].substr(0, max_cell - 3) + "..." : row[i];
      line += " " + cell + std::string(width[i] - std::min(width[i], display_width(cell)), ' ') +
              (i + 1 < row.size() ? " |" : "");
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    fmt::print("{}\n", line);
  };
  print(header, ' ');
  for (const auto& r : rows) {
    const bool differs = r.size() > 2 && std::any_of(r.begin() + 1, r.end(), [&](const auto& v) { return v != r[1]; });
    print(r, mark_differences && differs ? '*' : ' ');
  }
}

}  // namespace nexus::cli
