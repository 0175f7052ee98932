// Extraction: several teachers read the same windows of a corpus; their tapped hidden states, token
// ids, byte spans and top-k log-probabilities go into a feature store (nexus/fusion/features/feature_store.hpp).
//
// Resumable and deterministic: the windows, and which shard holds which, follow from the corpus, the
// tokenizers and the arguments alone, so a shard's bytes are a function of its windows. A rerun with
// the same arguments checks the manifest's identity, skips the shards it lists and writes the rest;
// a killed run loses at most the shard in progress. Windows are planned up front (about 20 bytes per
// token per teacher) so that shard boundaries and the progress total are known.
#pragma once

#include <chrono>
#include <cmath>
#include <functional>

#include "nexus/fusion/features/corpus.hpp"
#include "nexus/fusion/features/feature_store.hpp"
#include "nexus/fusion/teachers/teacher_set.hpp"
#include "nexus/io/safetensors_writer.hpp"
#include "nexus/io/sha256.hpp"

namespace nexus::fusion {


// ---- extraction --------------------------------------------------------------------------------

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

struct extract_result {
  bool complete = false;
  std::int64_t windows = 0, shards = 0;
  std::int64_t shards_resumed = 0, shards_written = 0;  // listed already / written by this run
  std::int64_t tokens_forwarded = 0;
  double seconds = 0;
  std::string resident;  // the teacher set's report at the end (teacher_set::report)
};

namespace detail {

inline std::uint16_t to_bf16(float f) {  // round to nearest even; NaN stays NaN
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((u >> 16) | 0x40);
  return std::uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/// The first place two JSON values differ, as a path ("teachers[1].weights[0].sha256"), or "".
inline std::string first_difference(const nlohmann::ordered_json& a, const nlohmann::ordered_json& b,
                                    const std::string& at) {
  if (a.is_number() && b.is_number()) return a == b ? "" : at;  // signed and unsigned read back alike
  if (a.type() != b.type()) return at;
  if (a.is_object()) {
    for (const auto& [k, v] : a.items()) {
      if (!b.contains(k)) return at + "." + k;
      if (auto d = first_difference(v, b[k], at + "." + k); !d.empty()) return d;
    }
    for (const auto& [k, v] : b.items())
      if (!a.contains(k)) return at + "." + k;
    return "";
  }
  if (a.is_array()) {
    if (a.size() != b.size())
      return at + " (" + std::to_string(a.size()) + " vs " + std::to_string(b.size()) + " entries)";
    for (std::size_t i = 0; i < a.size(); ++i)
      if (auto d = first_difference(a[i], b[i], at + "[" + std::to_string(i) + "]"); !d.empty()) return d;
    return "";
  }
  return a == b ? "" : at;
}

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

}  // namespace detail

/// Runs (or resumes) an extraction into opt.out. Throws store_error when opt.out holds another store.
inline extract_result extract(const extract_options& opt) {
  namespace fs = std::filesystem;
  using clock = std::chrono::steady_clock;
  const auto started = clock::now();
  if (opt.dtype != "bf16" && opt.dtype != "f32") throw usage_error("--dtype", "'" + opt.dtype + "': bf16 or f32");
  if (opt.context < 2) throw usage_error("--context", "at least 2 tokens");
  if (opt.top_k < 0) throw usage_error("--topk", "must not be negative");
  if (opt.shard_size == 0) throw usage_error("--shard-size", "must be positive");
  if (opt.layers.empty() && opt.top_k == 0)
    throw usage_error("--layers", "nothing to extract: no layers and no --topk");
  teacher_set set(opt.teachers, opt.budget, opt.cpu);
  const std::size_t T = set.size();
  const auto hidden_type = opt.dtype == "f32" ? dtype::f32 : dtype::bf16;

  // Identity: what the store is a function of.
  nlohmann::ordered_json identity = {{"format", store_format}, {"version", store_version}};
  identity["arguments"] = {{"context", opt.context},
                           {"layers", opt.layers},
                           {"top_k", opt.top_k},
                           {"dtype", opt.dtype},
                           {"shard_size", opt.shard_size}};
  std::vector<std::vector<std::string>> keys(T);
  std::vector<tap_request> taps(T);
  identity["teachers"] = nlohmann::ordered_json::array();
  for (std::size_t t = 0; t < T; ++t) {
    const auto& info = set.info(t);
    const auto& d = info.arch.dims;
    keys[t] = detail::layer_keys(opt.layers, d.num_layers);
    for (const auto& k : keys[t]) {
      if (k == "final") taps[t].final_norm = true;
      else taps[t].layers.push_back(std::stoll(k.substr(5)));
    }
    taps[t].top_k = opt.top_k;
    const bool gguf = !fs::is_directory(info.path);
    const auto weights = detail::files_identity(detail::weight_files(info.path));
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
                                    {"layer_keys", keys[t]},
                                    {"weights", weights},
                                    {"tokenizer", tok}});
  }
  const auto files = list_corpus(opt.corpus);
  identity["corpus"] = nlohmann::ordered_json::array();

  // Documents and their windows, in corpus order.
  std::vector<const tokenizer*> toks;
  for (std::size_t t = 0; t < T; ++t) toks.push_back(&set.tok(t));
  std::vector<window_plan> windows;
  std::int64_t documents = 0;
  for (const auto& f : files) {
    auto docs = read_documents(f);
    for (const auto& doc : docs) {
      try {
        auto w = plan_windows(doc, documents, toks, opt.context);
        windows.insert(windows.end(), std::make_move_iterator(w.begin()), std::make_move_iterator(w.end()));
      } catch (const usage_error& e) {
        throw usage_error(f.path.string(), "document " + std::to_string(documents) + ": " + e.what());
      }
      ++documents;
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
      b += 8 + w.ids[t].size() *
                   std::uint64_t(4 + 16 + std::int64_t(keys[t].size()) * set.info(t).arch.dims.hidden_size * esize +
                                 opt.top_k * 8);
    return b;
  };
  std::vector<std::pair<std::size_t, std::size_t>> shards;  // [first, end) windows
  for (std::size_t i = 0; i < windows.size();) {
    std::size_t j = i;
    std::uint64_t bytes = 0;
    while (j < windows.size() && (j == i || bytes + window_bytes(windows[j]) <= opt.shard_size))
      bytes += window_bytes(windows[j++]);
    shards.emplace_back(i, j);
    i = j;
  }

  // The store folder: new, or a store with this identity to continue.
  nlohmann::ordered_json manifest;
  if (fs::exists(opt.out / "manifest.json")) {
    manifest = read_manifest(opt.out);
    if (const auto d = detail::first_difference(manifest["identity"], identity, "identity"); !d.empty())
      throw store_error(store_error::code::mismatch, opt.out.string(),
                        "made from other teachers, corpus or arguments: " + d + " differs");
  } else {
    if (fs::exists(opt.out) && !fs::is_empty(opt.out))
      throw store_error(store_error::code::not_a_store, opt.out.string(),
                        "the folder has files but no manifest.json; give an empty or new folder");
    fs::create_directories(opt.out);
    manifest = {{"identity", identity}, {"shards", nlohmann::ordered_json::array()}, {"complete", false}};
    manifest["sources"] = {{"teachers", nlohmann::ordered_json::array()}, {"corpus", nlohmann::ordered_json::array()}};
    for (const auto& p : opt.teachers) manifest["sources"]["teachers"].push_back(p.string());
    for (const auto& f : files) manifest["sources"]["corpus"].push_back(f.path.string());
  }
  auto save_manifest = [&] {
    const auto text = manifest.dump(2) + "\n";
    write_file_atomically(opt.out / "manifest.json", std::as_bytes(std::span(text.data(), text.size())));
  };
  // Leftovers of a killed run: temporary files and shards the manifest does not list.
  const std::size_t done_shards = manifest["shards"].size();
  for (const auto& e : fs::directory_iterator(opt.out)) {
    const auto name = e.path().filename().string();
    bool listed = false;
    for (std::size_t s = 0; s < done_shards; ++s) listed |= name == shard_file_name(s);
    if (name.ends_with(".tmp") || (name.starts_with("shard-") && !listed)) fs::remove(e.path());
  }
  for (std::size_t s = 0; s < done_shards; ++s) {
    const auto& e = manifest["shards"][s];
    if (e["file"] != shard_file_name(s) || e["first_window"] != shards.at(s).first ||
        e["windows"] != shards[s].second - shards[s].first)
      throw store_error(store_error::code::manifest_invalid, opt.out.string(),
                        "shard " + std::to_string(s) + " is not the one this run plans");
    if (!fs::exists(opt.out / shard_file_name(s)))
      throw store_error(store_error::code::missing_shard, (opt.out / shard_file_name(s)).string(),
                        "listed in manifest.json but absent");
  }
  if (!fs::exists(opt.out / "manifest.json")) save_manifest();

  extract_result res;
  res.windows = std::int64_t(windows.size());
  res.shards = std::int64_t(shards.size());
  res.shards_resumed = std::int64_t(done_shards);
  extract_progress prog;
  prog.documents = documents;
  for (std::size_t s = done_shards; s < shards.size(); ++s)
    for (std::size_t w = shards[s].first; w < shards[s].second; ++w)
      for (std::size_t t = 0; t < T; ++t) prog.tokens += std::int64_t(windows[w].ids[t].size());
  prog.documents_done = done_shards ? windows[shards[done_shards - 1].second - 1].document + 1 : 0;
  std::int64_t forwards = 0;

  for (std::size_t s = done_shards; s < shards.size(); ++s) {
    const auto [first, end] = shards[s];
    const std::int64_t W = std::int64_t(end - first);
    // Per teacher: offsets, ids, spans, hidden states by key, top-k.
    struct columns {
      std::vector<std::int64_t> offsets{0}, spans;
      std::vector<std::int32_t> ids, topk_ids;
      std::vector<float> topk;
      std::vector<std::vector<std::byte>> hidden;
    };
    std::vector<columns> cols(T);
    for (std::size_t t = 0; t < T; ++t) {
      cols[t].hidden.resize(keys[t].size());
      for (std::size_t w = first; w < end; ++w) {
        const auto& ids = windows[w].ids[t];
        cols[t].offsets.push_back(cols[t].offsets.back() + std::int64_t(ids.size()));
        cols[t].ids.insert(cols[t].ids.end(), ids.begin(), ids.end());
        cols[t].spans.insert(cols[t].spans.end(), windows[w].spans[t].begin(), windows[w].spans[t].end());
      }
    }
    // Teachers in turn over the shard's windows; the order alternates so that the teacher resident
    // at the end of one shard starts the next (fewer loads under a tight budget).
    for (std::size_t k = 0; k < T; ++k) {
      const std::size_t t = s % 2 == 0 ? k : T - 1 - k;
      const auto& m = set.get(t);
      const auto H = std::size_t(m.arch().dims.hidden_size);
      for (std::size_t w = first; w < end; ++w) {
        const auto& ids = windows[w].ids[t];
        if (ids.empty()) continue;
        auto cache = m.new_cache(std::int64_t(ids.size()));
        const auto r = m.forward(ids, cache, {.all_logits = false, .chunk_rows = opt.chunk_rows, .taps = taps[t]});
        std::size_t li = 0;
        for (std::size_t kk = 0; kk < keys[t].size(); ++kk) {
          const auto& src = keys[t][kk] == "final" ? r.taps.final_norm : r.taps.layers[li++];
          auto& dst = cols[t].hidden[kk];
          const std::size_t n = ids.size() * H;
          if (src.data.size() != n) throw usage_error("extract", "tap of unexpected size");
          const auto at = dst.size();
          dst.resize(at + n * size_of(hidden_type));
          if (hidden_type == dtype::f32) std::memcpy(dst.data() + at, src.data.data(), n * 4);
          else
            for (std::size_t i = 0; i < n; ++i) {
              const auto h = detail::to_bf16(src.data[i]);
              std::memcpy(dst.data() + at + 2 * i, &h, 2);
            }
        }
        if (opt.top_k > 0) {
          cols[t].topk.insert(cols[t].topk.end(), r.taps.top_logprobs.data.begin(), r.taps.top_logprobs.data.end());
          cols[t].topk_ids.insert(cols[t].topk_ids.end(), r.taps.top_ids.begin(), r.taps.top_ids.end());
        }
        prog.tokens_done += std::int64_t(ids.size());
        res.tokens_forwarded += std::int64_t(ids.size());
        ++forwards;
        if (opt.progress) {
          prog.seconds = std::chrono::duration<double>(clock::now() - started).count();
          prog.documents_done = std::max(prog.documents_done, windows[w].document + (k + 1 == T ? 1 : 0));
          prog.resident = set.report();
          opt.progress(prog);
        }
        if (opt.stop && opt.stop(forwards)) {
          res.seconds = std::chrono::duration<double>(clock::now() - started).count();
          res.resident = set.report();
          return res;
        }
      }
      // k < the topk: a vocabulary smaller than k gives k' = vocab columns; the store keeps k.
      if (opt.top_k > 0 && std::int64_t(cols[t].topk.size()) != cols[t].offsets.back() * opt.top_k)
        throw usage_error("--topk", std::to_string(opt.top_k) + " is more than the vocabulary of " + set.info(t).name);
    }
    // The shard: shared window tensors, then each teacher's; widest elements first for alignment.
    std::vector<std::int64_t> document, bytes;
    for (std::size_t w = first; w < end; ++w) {
      document.push_back(windows[w].document);
      bytes.insert(bytes.end(), {windows[w].begin, windows[w].end});
    }
    std::vector<tensor_to_write> tensors;
    auto add = [&](std::string name, dtype type, std::vector<std::int64_t> shape, std::span<const std::byte> data) {
      tensors.push_back({std::move(name), type, std::move(shape), data});
    };
    add("windows.document", dtype::i64, {W}, std::as_bytes(std::span(document)));
    add("windows.bytes", dtype::i64, {W, 2}, std::as_bytes(std::span(bytes)));
    for (std::size_t t = 0; t < T; ++t) {
      const auto& c = cols[t];
      const std::int64_t N = c.offsets.back(), H = set.info(t).arch.dims.hidden_size;
      add(teacher_tensor(t, "window_offsets"), dtype::i64, {W + 1}, std::as_bytes(std::span(c.offsets)));
      add(teacher_tensor(t, "spans"), dtype::i64, {N, 2}, std::as_bytes(std::span(c.spans)));
      add(teacher_tensor(t, "ids"), dtype::i32, {N}, std::as_bytes(std::span(c.ids)));
      for (std::size_t kk = 0; kk < keys[t].size(); ++kk)
        add(teacher_tensor(t, keys[t][kk]), hidden_type, {N, H}, c.hidden[kk]);
      if (opt.top_k > 0) {
        add(teacher_tensor(t, "topk_logprobs"), dtype::f32, {N, opt.top_k}, std::as_bytes(std::span(c.topk)));
        add(teacher_tensor(t, "topk_ids"), dtype::i32, {N, opt.top_k}, std::as_bytes(std::span(c.topk_ids)));
      }
    }
    std::stable_sort(tensors.begin(), tensors.end(),
                     [](const auto& a, const auto& b) { return size_of(a.type) > size_of(b.type); });
    const auto file =
        serialize_safetensors(tensors, {{"format", store_format}, {"first_window", std::to_string(first)}});
    write_file_atomically(opt.out / shard_file_name(s), file);
    nlohmann::ordered_json entry = {{"file", shard_file_name(s)},
                                    {"first_window", first},
                                    {"windows", W},
                                    {"documents", {windows[first].document, windows[end - 1].document + 1}},
                                    {"bytes", file.size()},
                                    {"sha256", sha256_hex(file)}};
    entry["tokens"] = nlohmann::ordered_json::array();
    for (std::size_t t = 0; t < T; ++t) entry["tokens"].push_back(cols[t].offsets.back());
    manifest["shards"].push_back(entry);
    save_manifest();
    ++res.shards_written;
  }
  if (!manifest["complete"].get<bool>()) {
    manifest["complete"] = true;
    manifest["windows"] = windows.size();
    manifest["documents"] = documents;
    save_manifest();
  }
  res.complete = true;
  res.seconds = std::chrono::duration<double>(clock::now() - started).count();
  res.resident = set.report();
  return res;
}

}  // namespace nexus::fusion
