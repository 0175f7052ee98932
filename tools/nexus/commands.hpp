// The subcommands of `nexus`. Each returns the process exit code: 0 ok, 1 a model failed.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <numeric>
#include <set>

#include "nexus/chat/chat_template.hpp"
#include "nexus/generate/generate.hpp"
#include "nexus/inspect/summary.hpp"
#include "nexus/generate/parity_check.hpp"
#include "nexus/inspect/architecture_table.hpp"
#include "table.hpp"

#if defined(NEXUS_WITH_CUDA)
#include "nexus/backend/cuda/model.hpp"
#endif

namespace nexus::cli {

namespace fs = std::filesystem;

inline std::string folder_name(const std::string& path) {
  auto p = fs::path(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // "dir/" names "dir"
  return p.filename().string();
}

// ---- inspect -----------------------------------------------------------------------------------

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

inline nlohmann::ordered_json summary_json(const model_summary& m, bool check) {
  nlohmann::ordered_json j;
  j["path"] = m.path;
  j["descriptor"] = reflect::to_json(m.source.arch);
  j["parameters"] = m.parameters;
  j["tensors"] = m.tensor_count;
  j["bytes_by_dtype"] = m.bytes_by_dtype;
  if (check)
    j["check"] = {{"ok", m.source.bound.complete()},
                  {"missing", m.source.bound.missing},
                  {"mis_shaped", m.source.bound.mis_shaped},
                  {"unused", m.source.bound.unused},
                  {"ignored", m.source.bound.ignored}};
  return j;
}

inline int inspect(const std::vector<std::string>& dirs, bool check, bool json) {
  std::vector<model_summary> models;
  int status = 0;
  for (const auto& dir : dirs) {
    try {
      models.push_back(summarize(dir));
    } catch (const error& e) {
      fmt::print(stderr, "nexus inspect: {}\n", e.what());
      status = 1;
    }
  }
  if (json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& m : models) out.push_back(summary_json(m, check));
    fmt::print("{}\n", out.dump(2));
  } else if (!models.empty()) {
    std::vector<const model_summary*> columns;
    for (const auto& m : models) columns.push_back(&m);
    print_descriptor_table(columns);
  }
  if (check)
    for (const auto& m : models) {
      if (m.source.bound.complete()) {
        if (!json)
          fmt::print("check {}: ok ({} tensors bound, {} ignored)\n", m.path, m.source.bound.tensors.size(),
                     m.source.bound.ignored.size());
      } else {
        fmt::print(stderr, "nexus inspect: {}: checkpoint does not match its config: {}\n", m.path,
                   m.source.bound.report());
        status = 1;
      }
    }
  return status;
}

// ---- run / parity ------------------------------------------------------------------------------

/// Where a command runs: `--device cpu --threads N --precision stored|fp32` or `--device cuda --precision ...`.
/// An empty precision is the device's default: stored on the CPU, fp32 on CUDA.
struct device_args {
  std::string device = "cpu", precision;
  int threads = 0;  // CPU worker threads; 0: every core
};

/// The CPU options of `--threads` and `--precision` (stored: weights in their checkpoint format; fp32: widened).
inline cpu_options cpu_options_of(const device_args& d) {
  cpu_options o{.threads = d.threads};
  if (d.threads < 0) throw usage_error("--threads", "must be 0 (every core) or a positive count");
  if (d.precision.empty() || d.precision == "stored") o.precision = weight_precision::stored;
  else if (d.precision == "fp32") o.precision = weight_precision::fp32;
  else
    throw usage_error("--precision", "the CPU backend holds weights as 'stored' or 'fp32', not '" + d.precision + "'");
  return o;
}

inline std::unique_ptr<model> load_model(const std::string& dir, const device_args& d) {
  if (d.device == "cpu") return load_cpu_model(dir, cpu_options_of(d));
  if (d.threads != 0) throw usage_error("--threads", "sets CPU worker threads; it does not apply to --device cuda");
#if defined(NEXUS_WITH_CUDA)
  if (d.precision != "" && d.precision != "fp32" && d.precision != "bf16" && d.precision != "fp16")
    throw usage_error("--precision", "the CUDA backend runs fp32, bf16 or fp16, not '" + d.precision + "'");
  const auto p = d.precision == "bf16"   ? cuda::precision::bf16
                 : d.precision == "fp16" ? cuda::precision::fp16
                                         : cuda::precision::fp32;
  return cuda::load_model(dir, p);
#else
  throw usage_error("--device", "this build has no CUDA backend (configure with -DNEXUS_ENABLE_CUDA=ON)");
#endif
}

inline std::vector<std::int32_t> parse_ids(const std::string& text) {
  std::vector<std::int32_t> ids;
  for (std::size_t at = 0; at <= text.size();) {
    const auto comma = std::min(text.find(',', at), text.size());
    const auto item = text.substr(at, comma - at);
    try {
      std::size_t used = 0;
      const long v = std::stol(item, &used);
      if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(item);
      ids.push_back(static_cast<std::int32_t>(v));
    } catch (const std::exception&) {
      throw usage_error("--ids", "'" + item + "' is not a token id (expected comma-separated non-negative integers)");
    }
    at = comma + 1;
  }
  return ids;
}

/// `nexus run`: top-k next tokens at every position.
inline int run(const std::string& dir, const std::string& ids_text, int top, const device_args& dev) {
  const auto ids = parse_ids(ids_text);
  const auto m = load_model(dir, dev);
  auto cache = m->new_cache(std::int64_t(ids.size()));
  const auto out = m->forward(ids, cache);
  const auto vocab = std::size_t(m->arch().dims.vocab_size);
  const auto k = std::min<std::size_t>(std::size_t(std::max(top, 1)), vocab);
  for (std::size_t p = 0; p < ids.size(); ++p) {
    std::vector<std::size_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    const float* row = out.logits.data.data() + p * vocab;
    std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(k), order.end(),
                      [&](auto a, auto b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    std::string line = fmt::format("pos {:>4} id {:>6} ->", p, ids[p]);
    for (std::size_t i = 0; i < k; ++i) line += fmt::format(" {}:{:.4f}", order[i], row[order[i]]);
    fmt::print("{}\n", line);
  }
  return 0;
}

/// `nexus parity`: every layer and the logits against a reference file (a full outputs file, or the compact
/// form of tests/data/real: see generate/parity_check.hpp).
inline int parity(const std::string& dir, std::string ref_path, const device_args& dev) {
  if (ref_path.empty())
    ref_path = registry::is_gguf_path(dir) ? (fs::path(dir).replace_extension("").string() + ".outputs.safetensors")
                                           : (fs::path(dir) / "outputs.safetensors").string();
  const checkpoint ref(ref_path);
  const auto rep = check_parity(*load_model(dir, dev), ref);
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : rep.rows) {
    if (r.tensor.ends_with(".greedy")) rows.push_back({r.tensor, "", "", "", r.ok ? "identical" : "DIFFER"});
    else if (r.tensor.ends_with(".topk_ids"))
      rows.push_back({r.tensor, "", "", "", r.ok ? "same ids" : fmt::format("{} ranks differ", r.stats.max_abs)});
    else
      rows.push_back({r.tensor, fmt::format("{:.3e}", r.stats.max_abs), fmt::format("{:.3e}", r.stats.max_ref),
                      fmt::format("{:.3e}", r.stats.nmse), r.ok ? "ok" : "OUT OF BOUNDS"});
  }
  print_table({"tensor", "max|Δ|", "max|ref|", "NMSE", ""}, rows);
  fmt::print("parity {}: {}\n", dir, rep.ok() ? "pass" : "FAIL");
  return rep.ok() ? 0 : 1;
}

// ---- generate ----------------------------------------------------------------------------------

struct generate_args {
  std::string dir, prompt;
  std::int64_t max_new_tokens = 32;
  float temperature = 0, top_p = 1;
  int top_k = 0;
  std::uint64_t seed = 0;
  std::vector<std::string> stop;
  bool no_stream = false, chat = false;
  device_args device;
  std::size_t max_bytes = 256;  // a .nexus bundle
  std::string mode = "auto";    // a .nexus bundle: fusion::parse_system_mode
};

/// The chat template of a checkpoint (GGUF metadata, or the folder's tokenizer_config.json /
/// chat_template.jinja), or a named error when it has none.
inline chat::chat_template load_chat_template(const std::string& path) {
  const auto source =
      registry::is_gguf_path(path) ? chat::template_from_gguf(gguf::file(path)) : chat::template_from_folder(path);
  if (!source)
    throw unsupported_error(
        path, "has no chat template (tokenizer.chat_template / tokenizer_config.json chat_template); drop --chat");
  return chat::chat_template(*source, path + ": chat template");
}

/// One user message through a chat template, with the generation prompt: the text to encode without
/// adding special tokens (the template writes them).
inline std::string chat_prompt(const chat::chat_template& tpl, const tokenizer& tok, const std::string& user) {
  chat::options opts;
  opts.add_generation_prompt = true;
  return tpl.render(std::vector<chat::message>{{"user", user}}, chat::with_special_tokens(tok, opts));
}

inline int generate_text(const generate_args& a) {
  const auto tok = tokenizer::load(a.dir);  // tokenizer.json, or the tokenizer in a .gguf file's metadata
  const auto m = load_model(a.dir, a.device);
  // With --chat the prompt is one user message through the model's chat template, which writes the
  // special tokens itself.
  const auto text = a.chat ? chat_prompt(load_chat_template(a.dir), tok, a.prompt) : a.prompt;
  const auto prompt = tok.encode(text, !a.chat);
  generate_options opt;
  opt.max_new_tokens = a.max_new_tokens;
  opt.sampling = {a.temperature, a.top_k, a.top_p, a.seed};
  opt.stop_strings = a.stop;
  if (tok.eos()) opt.stop_tokens.push_back(*tok.eos());
  if (!a.no_stream)
    opt.on_text = [](const std::string& s) {
      fmt::print("{}", s);
      std::fflush(stdout);
    };
  const auto r = generate(*m, &tok, prompt, opt);
  if (a.no_stream) fmt::print("{}", r.text);
  fmt::print("\n");
  std::fflush(stdout);  // the text before the statistics on stderr
  fmt::print(stderr, "{} prompt tokens, {} new tokens; prefill {:.1f} tok/s, decode {:.1f} tok/s; stopped by {}\n",
             prompt.size(), r.tokens.size(), r.prefill_tokens_per_second(), r.decode_tokens_per_second(),
             r.reason == generate_result::stop::length  ? "length"
             : r.reason == generate_result::stop::token ? "stop token"
                                                        : "stop string");
  return 0;
}

}  // namespace nexus::cli
