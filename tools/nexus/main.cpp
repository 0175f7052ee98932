// The `nexus` command line. Exit codes: 0 ok, 1 a model failed (error, --check, parity), 2 bad usage.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>
#include <numeric>

#include "nexus/nexus.hpp"
#include "nexus/backend/cpu/model.hpp"
#include "nexus/generate/greedy.hpp"
#include "nexus/model/parity.hpp"
#include "nexus/registry/architecture_table.hpp"

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


std::vector<std::int32_t> parse_ids(const std::string& text) {
  std::vector<std::int32_t> ids;
  std::size_t at = 0;
  while (at <= text.size()) {
    const auto comma = std::min(text.find(',', at), text.size());
    const auto item = text.substr(at, comma - at);
    try {
      std::size_t used = 0;
      const long v = std::stol(item, &used);
      if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(item);
      ids.push_back(static_cast<std::int32_t>(v));
    } catch (const std::exception&) {
      throw nexus::usage_error("--ids", "'" + item + "' is not a token id (expected comma-separated non-negative integers)");
    }
    at = comma + 1;
  }
  return ids;
}

/// `nexus run`: top-k next tokens at every position.
int run(const std::string& dir, const std::string& ids_text, int top) {
  const auto ids = parse_ids(ids_text);
  const auto m = nexus::load_cpu_model(dir);
  auto cache = m->new_cache(std::int64_t(ids.size()));
  const auto out = m->forward(ids, cache);
  const auto vocab = std::size_t(m->arch().dims.vocab_size);
  const auto k = std::min<std::size_t>(std::size_t(std::max(top, 1)), vocab);
  for (std::size_t p = 0; p < ids.size(); ++p) {
    std::vector<std::size_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    const float* row = out.logits.data.data() + p * vocab;
    std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(k), order.end(), [&](auto a, auto b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    std::string line = fmt::format("pos {:>4} id {:>6} ->", p, ids[p]);
    for (std::size_t i = 0; i < k; ++i) line += fmt::format(" {}:{:.4f}", order[i], row[order[i]]);
    fmt::print("{}\n", line);
  }
  return 0;
}

/// `nexus parity`: every layer and the logits against a reference file; non-zero when out of bounds.
int parity(const std::string& dir, std::string ref_path) {
  if (ref_path.empty()) ref_path = (std::filesystem::path(dir) / "outputs.safetensors").string();
  const nexus::checkpoint ref(ref_path);
  const auto m = nexus::load_cpu_model(dir);
  bool ok = true;
  fmt::print("{:<22} {:>12} {:>12} {:>12}  {}\n", "tensor", "max|d|", "max|ref|", "NMSE", "");
  auto row = [&](const std::string& name, std::span<const float> ours) {
    const auto s = nexus::compare(ours, nexus::reference_floats(ref, name));
    ok = ok && s.within();
    fmt::print("{:<22} {:>12.3e} {:>12.3e} {:>12.3e}  {}\n", name, s.max_abs, s.max_ref, s.nmse, s.within() ? "ok" : "OUT OF BOUNDS");
  };
  int sequences = 0;
  for (int s = 0; ref.contains("seq" + std::to_string(s) + ".input_ids"); ++s, ++sequences) {
    const std::string seq = "seq" + std::to_string(s);
    const auto ids = nexus::reference_ids(ref, seq + ".input_ids");
    auto cache = m->new_cache(std::int64_t(ids.size()));
    const auto out = m->forward(ids, cache, {.all_logits = true, .hidden_states = true});
    row(seq + ".embed", out.hidden.front().data);
    for (std::size_t l = 1; l + 1 < out.hidden.size(); ++l) row(seq + ".layer" + std::to_string(l - 1), out.hidden[l].data);
    row(seq + ".final", out.hidden.back().data);
    row(seq + ".logits", out.logits.data);
    if (ref.contains(seq + ".greedy")) {
      const auto want = nexus::reference_ids(ref, seq + ".greedy");
      const auto g = nexus::greedy_generate(*m, ids, std::int64_t(want.size()));
      const bool same = g.tokens == want;
      ok = ok && same;
      fmt::print("{:<22} {} greedy tokens {}\n", seq + ".greedy", want.size(), same ? "identical" : "DIFFER");
    }
  }
  if (sequences == 0) throw nexus::checkpoint_error(ref_path, "no seq0.input_ids: not a reference outputs file");
  fmt::print("parity {}: {}\n", dir, ok ? "pass" : "FAIL");
  return ok ? 0 : 1;
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
  std::string dir, ids, ref;
  int top = 5;
  auto* run_cmd = app.add_subcommand("run", "Top-k next tokens at every position (CPU, fp32)");
  run_cmd->add_option("dir", dir, "checkpoint folder")->required()->check(CLI::ExistingDirectory);
  run_cmd->add_option("--ids", ids, "comma-separated token ids, e.g. 1,2,3")->required();
  run_cmd->add_option("--top", top, "how many tokens per position")->check(CLI::Range(1, 1000));
  auto* parity_cmd = app.add_subcommand("parity", "Compare every layer and the logits with a reference file");
  parity_cmd->add_option("dir", dir, "checkpoint folder")->required()->check(CLI::ExistingDirectory);
  parity_cmd->add_option("--ref", ref, "reference outputs (default DIR/outputs.safetensors)")->check(CLI::ExistingFile);
  auto* arch_cmd = app.add_subcommand("architectures", "The registered families and their traits, as a Markdown table");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "nexus: " << e.what() << " (see nexus --help)\n";
    return 2;
  }
  try {
    if (*cmd) return inspect(dirs, check, json);
    if (*run_cmd) return run(dir, ids, top);
    if (*parity_cmd) return parity(dir, ref);
    if (*arch_cmd) fmt::print("{}", nexus::registry::architecture_table_markdown());
  } catch (const nexus::usage_error& e) {
    fmt::print(stderr, "nexus: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "nexus: {}\n", e.what());
    return 1;
  }
  return 0;
}
