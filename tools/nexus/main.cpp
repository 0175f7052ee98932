// The `nexus` command line. Exit codes: 0 ok, 1 a model failed (error or --check), 2 bad usage.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>

#include "nexus/nexus.hpp"

namespace {

/// Columns on a terminal: UTF-8 continuation bytes take no room ("×" in run-length lists).
std::size_t display_width(const std::string& s) {
  return std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

std::string human(std::int64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{:.2f}B", n / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.2f}M", n / 1e6);
  if (n >= 1'000) return fmt::format("{:.1f}K", n / 1e3);
  return std::to_string(n);
}

/// Rows are fields, columns are models; rows where the models differ are marked '*'.
void print_table(const std::vector<nexus::model_summary>& models) {
  std::vector<std::string> header{"field"};
  for (const auto& m : models) {
    auto p = std::filesystem::path(m.path).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();  // "dir/" names "dir"
    header.push_back(p.filename().string());
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<std::vector<std::pair<std::string, std::string>>> flat;
  for (const auto& m : models) flat.push_back(nexus::reflect::flatten(m.arch));
  for (std::size_t r = 0; r < flat.front().size(); ++r) {
    std::vector<std::string> row{flat.front()[r].first};
    for (const auto& f : flat) row.push_back(f[r].second);
    rows.push_back(std::move(row));
  }
  std::set<std::string> dtypes;
  for (const auto& m : models)
    for (const auto& [d, b] : m.bytes_by_dtype) dtypes.insert(d);
  auto add = [&](std::string name, auto value_of) {
    std::vector<std::string> row{std::move(name)};
    for (const auto& m : models) row.push_back(value_of(m));
    rows.push_back(std::move(row));
  };
  add("parameters", [](const auto& m) { return human(m.parameters); });
  add("tensors", [](const auto& m) { return std::to_string(m.tensor_count); });
  for (const auto& d : dtypes)
    add("bytes." + d, [&](const auto& m) { auto it = m.bytes_by_dtype.find(d); return it == m.bytes_by_dtype.end() ? std::string("-") : human(it->second); });

  std::vector<std::size_t> width(header.size());
  auto measure = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], std::min<std::size_t>(display_width(row[i]), 48));
  };
  measure(header);
  for (const auto& r : rows) measure(r);
  auto print = [&](const std::vector<std::string>& row, char mark) {
    std::string line(1, mark);
    for (std::size_t i = 0; i < row.size(); ++i) {
      auto cell = row[i].size() > 48 ? row[i].substr(0, 45) + "..." : row[i];
      line += " " + cell + std::string(width[i] - std::min(width[i], display_width(cell)), ' ') + (i + 1 < row.size() ? " |" : "");
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    fmt::print("{}\n", line);
  };
  print(header, ' ');
  for (const auto& r : rows) {
    const bool differs = std::any_of(r.begin() + 1, r.end(), [&](const auto& v) { return v != r[1]; });
    print(r, models.size() > 1 && differs ? '*' : ' ');
  }
}

nlohmann::ordered_json to_json(const nexus::model_summary& m, bool check) {
  nlohmann::ordered_json j;
  j["path"] = m.path;
  j["descriptor"] = nexus::reflect::to_json(m.arch);
  j["parameters"] = m.parameters;
  j["tensors"] = m.tensor_count;
  j["bytes_by_dtype"] = m.bytes_by_dtype;
  if (check) {
    j["check"] = {{"ok", m.binding.complete()}, {"missing", m.binding.missing}, {"mis_shaped", m.binding.mis_shaped},
                  {"unused", m.binding.unused}, {"ignored", m.binding.ignored}};
  }
  return j;
}

int inspect(const std::vector<std::string>& dirs, bool check, bool json) {
  std::vector<nexus::model_summary> models;
  int status = 0;
  for (const auto& dir : dirs) {
    try {
      models.push_back(nexus::summarize(dir));
    } catch (const nexus::error& e) {
      fmt::print(stderr, "nexus inspect: {}\n", e.what());
      status = 1;
    }
  }
  if (json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& m : models) out.push_back(to_json(m, check));
    fmt::print("{}\n", out.dump(2));
  } else if (!models.empty()) {
    print_table(models);
  }
  if (check) {
    for (const auto& m : models) {
      if (m.binding.complete()) {
        if (!json) fmt::print("check {}: ok ({} tensors bound, {} ignored)\n", m.path, m.binding.tensors.size(), m.binding.ignored.size());
      } else {
        fmt::print(stderr, "nexus inspect: {}: checkpoint does not match its config: {}\n", m.path, m.binding.report());
        status = 1;
      }
    }
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Nexus: many transformer families through one set of universal blocks"};
  app.require_subcommand(1);
  std::vector<std::string> dirs;
  bool check = false, json = false;
  auto* cmd = app.add_subcommand("inspect", "Descriptors of checkpoint folders side by side");
  cmd->add_option("dirs", dirs, "Hugging Face checkpoint folders (config.json + *.safetensors)")->required()->check(CLI::ExistingDirectory);
  cmd->add_flag("--check", check, "verify every expected tensor exists once with the right shape and none is unused");
  cmd->add_flag("--json", json, "print JSON instead of a table");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "nexus: " << e.what() << " (see nexus --help)\n";
    return 2;
  }
  try {
    if (*cmd) return inspect(dirs, check, json);
  } catch (const std::exception& e) {
    fmt::print(stderr, "nexus: {}\n", e.what());
    return 1;
  }
  return 0;
}
