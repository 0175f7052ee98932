// What an extraction is a function of, planned before any weights load: its options, the identity
// its manifest records (arguments, teachers' weights and tokenizers, corpus files by sha256), the
// corpus's windows and the shards they fill.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/fusion/features/corpus.hpp"
#include "nexus/fusion/features/feature_store.hpp"
#include "nexus/fusion/teachers/teacher_set.hpp"
#include "nexus/io/sha256.hpp"

namespace nexus::fusion {

/// Where a run stands (extract_options::progress).
struct extract_progress {
  std::int64_t documents_done = 0, documents = 0;
  std::int64_t tokens_done = 0, tokens = 0;  // tokens forwarded, over all teachers (this run)
  double seconds = 0;                        // since this run started
  std::string resident;                      // the teacher set's report
};

struct extract_options {
  std::vector<std::filesystem::path> teachers;
  std::vector<std::filesystem::path> corpus;
  std::vector<std::string> layers;  // "6", "-1", "final"
  std::int64_t top_k = 0;
  std::string dtype = "bf16";  // of the hidden states: bf16 or f32
  std::int64_t context = 512;
  std::filesystem::path out;
  std::uint64_t shard_size = 64ull << 20;
  std::uint64_t budget = 0;  // resident weights; 0: no limit
  cpu_options cpu = {};
  std::int64_t chunk_rows = 0;  // tokens per forward step (0: the backend's choice)
  /// Called after every teacher's forward of a window with how many such forwards this run has
  /// done; returning true stops the run there (the shard in progress is not written).
  std::function<bool(std::int64_t)> stop;
  std::function<void(const extract_progress&)> progress;
};

namespace detail {

inline nlohmann::ordered_json files_identity(const std::vector<std::filesystem::path>& files) {
  auto out = nlohmann::ordered_json::array();
  for (const auto& f : files)
    out.push_back({{"file", f.filename().string()},
                   {"bytes", std::filesystem::file_size(f)},
                   {"sha256", sha256_file(f.string())}});
  return out;
}

/// The weight files of a checkpoint: a .gguf file, or a folder's config.json and safetensors files.
inline std::vector<std::filesystem::path> weight_files(const std::filesystem::path& p) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(p)) return {p};
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(p)) {
    const auto name = e.path().filename().string();
    if (e.is_regular_file() &&
        (name == "config.json" || name.ends_with(".safetensors") || name == "model.safetensors.index.json"))
      files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

/// Layer arguments -> the keys of one teacher's hidden-state tensors, without repeats.
inline std::vector<std::string> layer_keys(const std::vector<std::string>& layers, std::int64_t num_layers) {
  std::vector<std::string> keys;
  for (const auto& a : layers) {
    std::string key;
    if (a == "final") key = "final";
    else {
      std::size_t used = 0;
      std::int64_t v = 0;
      try {
        v = std::stoll(a, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != a.size()) throw usage_error("--layers", "'" + a + "' is not a layer index or 'final'");
      key = "layer" + std::to_string(tapped_layers({.layers = {v}}, num_layers).front());
    }
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  }
  return keys;
}

/// What an extraction is a function of (the identity its manifest records), the keys and taps of
/// each teacher, the corpus's windows and their shards: all known before any weights load.
struct extraction_plan {
  nlohmann::ordered_json identity;
  std::vector<std::vector<std::string>> keys;  // per teacher: "layer<i>" or "final"
  std::vector<tap_request> taps;
  std::vector<corpus_file> files;
  std::vector<window_plan> windows;
  std::int64_t documents = 0;
  std::vector<std::pair<std::size_t, std::size_t>> shards;  // [first, end) windows
};

inline extraction_plan plan_extraction(const extract_options& opt, const teacher_set& set, dtype hidden_type) {
  namespace fs = std::filesystem;
  const std::size_t T = set.size();
  extraction_plan plan;
  auto& identity = plan.identity;
  identity = {{"format", store_format}, {"version", store_version}};
  identity["arguments"] = {{"context", opt.context},
                           {"layers", opt.layers},
                           {"top_k", opt.top_k},
                           {"dtype", opt.dtype},
                           {"shard_size", opt.shard_size}};
  plan.keys.resize(T);
  plan.taps.resize(T);
  identity["teachers"] = nlohmann::ordered_json::array();
  for (std::size_t t = 0; t < T; ++t) {
    const auto& info = set.info(t);
    const auto& d = info.arch.dims;
    plan.keys[t] = layer_keys(opt.layers, d.num_layers);
    for (const auto& k : plan.keys[t]) {
      if (k == "final") plan.taps[t].final_norm = true;
      else plan.taps[t].layers.push_back(std::stoll(k.substr(5)));
    }
    plan.taps[t].top_k = opt.top_k;
    const bool gguf = !fs::is_directory(info.path);
    const auto weights = files_identity(weight_files(info.path));
    nlohmann::ordered_json tok = {{"source", gguf ? "gguf metadata" : "tokenizer.json"},
                                  {"sha256", gguf ? weights[0]["sha256"].get<std::string>()
                                                  : sha256_file((info.path / "tokenizer.json").string())},
                                  {"vocab_size", d.vocab_size},
                                  {"prefix_ids", set.tok(t).prefix_ids()}};
    identity["teachers"].push_back({{"name", info.name},
                                    {"family", info.arch.family},
                                    {"num_layers", d.num_layers},
                                    {"hidden_size", d.hidden_size},
                                    {"vocab_size", d.vocab_size},
                                    {"layer_keys", plan.keys[t]},
                                    {"weights", weights},
                                    {"tokenizer", tok}});
  }
  plan.files = list_corpus(opt.corpus);
  identity["corpus"] = nlohmann::ordered_json::array();

  // Documents and their windows, in corpus order.
  std::vector<const tokenizer*> toks;
  for (std::size_t t = 0; t < T; ++t) toks.push_back(&set.tok(t));
  for (const auto& f : plan.files) {
    auto docs = read_documents(f);
    for (const auto& doc : docs) {
      try {
        auto w = plan_windows(doc, plan.documents, toks, opt.context);
        plan.windows.insert(plan.windows.end(), std::make_move_iterator(w.begin()), std::make_move_iterator(w.end()));
      } catch (const usage_error& e) {
        throw usage_error(f.path.string(), "document " + std::to_string(plan.documents) + ": " + e.what());
      }
      ++plan.documents;
    }
    identity["corpus"].push_back({{"file", f.path.filename().string()},
                                  {"format", f.jsonl ? "jsonl" : "text"},
                                  {"bytes", fs::file_size(f.path)},
                                  {"sha256", sha256_file(f.path.string())},
                                  {"documents", docs.size()}});
  }

  // Shards: consecutive windows up to the size cap (at least one window each).
  const std::int64_t esize = std::int64_t(size_of(hidden_type));
  auto window_bytes = [&](const window_plan& w) {
    std::uint64_t b = 24;
    for (std::size_t t = 0; t < T; ++t)
      b +=
          8 + w.ids[t].size() *
                  std::uint64_t(4 + 16 + std::int64_t(plan.keys[t].size()) * set.info(t).arch.dims.hidden_size * esize +
                                opt.top_k * 8);
    return b;
  };
  const auto& windows = plan.windows;
  for (std::size_t i = 0; i < windows.size();) {
    std::size_t j = i;
    std::uint64_t bytes = 0;
    while (j < windows.size() && (j == i || bytes + window_bytes(windows[j]) <= opt.shard_size))
      bytes += window_bytes(windows[j++]);
    plan.shards.emplace_back(i, j);
    i = j;
  }
  return plan;
}

}  // namespace detail

}  // namespace nexus::fusion
