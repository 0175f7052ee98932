// Descriptors of models side by side as a terminal table (nexus inspect, nexus demo).
#pragma once

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "nexus/inspect/summary.hpp"
#include "table.hpp"

namespace nexus::cli {

/// The last name of a path: "dir/" names "dir".
inline std::string folder_name(const std::string& path) {
  auto p = std::filesystem::path(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

/// Rows are descriptor fields, columns are models; with `only_differences`, equal rows are left out.
inline void print_descriptor_table(const std::vector<const model_summary*>& models, bool only_differences = false) {
  std::vector<std::string> header{"field"};
  for (const auto* m : models) header.push_back(folder_name(m->path));
  std::vector<std::vector<std::pair<std::string, std::string>>> flat;
  for (const auto* m : models) flat.push_back(reflect::flatten(m->source.arch));
  std::vector<std::vector<std::string>> rows;
  for (std::size_t r = 0; r < flat.front().size(); ++r) {
    std::vector<std::string> row{flat.front()[r].first};
    for (const auto& f : flat) row.push_back(f[r].second);
    if (!only_differences || std::any_of(row.begin() + 1, row.end(), [&](const auto& v) { return v != row[1]; }))
      rows.push_back(std::move(row));
  }
  std::set<std::string> dtypes;
  for (const auto* m : models)
    for (const auto& [d, b] : m->bytes_by_dtype) dtypes.insert(d);
  auto add = [&](std::string name, auto value_of) {
    std::vector<std::string> row{std::move(name)};
    for (const auto* m : models) row.push_back(value_of(*m));
    rows.push_back(std::move(row));
  };
  add("parameters", [](const auto& m) { return human(m.parameters); });
  add("tensors", [](const auto& m) { return std::to_string(m.tensor_count); });
  for (const auto& d : dtypes)
    add("bytes." + d, [&](const auto& m) {
      const auto it = m.bytes_by_dtype.find(d);
      return it == m.bytes_by_dtype.end() ? std::string("-") : human(it->second);
    });
  print_table(header, rows, models.size() > 1);
}

}  // namespace nexus::cli
