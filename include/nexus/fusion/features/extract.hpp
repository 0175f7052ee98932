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

#include "nexus/fusion/features/plan.hpp"
#include "nexus/io/safetensors_writer.hpp"
#include "nexus/io/sha256.hpp"

namespace nexus::fusion {

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

/// The store folder's manifest: new, or that of a store with this identity to continue. Leftovers
/// of a killed run (temporary files, shards the manifest does not list) are removed and the listed
/// shards checked against the plan.
inline nlohmann::ordered_json open_store(const extract_options& opt, const extraction_plan& plan) {
  namespace fs = std::filesystem;
  nlohmann::ordered_json manifest;
  if (fs::exists(opt.out / "manifest.json")) {
    manifest = read_manifest(opt.out);
    if (const auto d = first_difference(manifest["identity"], plan.identity, "identity"); !d.empty())
      throw store_error(store_error::code::mismatch, opt.out.string(),
                        "made from other teachers, corpus or arguments: " + d + " differs");
  } else {
    if (fs::exists(opt.out) && !fs::is_empty(opt.out))
      throw store_error(store_error::code::not_a_store, opt.out.string(),
                        "the folder has files but no manifest.json; give an empty or new folder");
    fs::create_directories(opt.out);
    manifest = {{"identity", plan.identity}, {"shards", nlohmann::ordered_json::array()}, {"complete", false}};
    manifest["sources"] = {{"teachers", nlohmann::ordered_json::array()}, {"corpus", nlohmann::ordered_json::array()}};
    for (const auto& p : opt.teachers) manifest["sources"]["teachers"].push_back(p.string());
    for (const auto& f : plan.files) manifest["sources"]["corpus"].push_back(f.path.string());
  }
  const std::size_t done_shards = manifest["shards"].size();
  for (const auto& e : fs::directory_iterator(opt.out)) {
    const auto name = e.path().filename().string();
    bool listed = false;
    for (std::size_t s = 0; s < done_shards; ++s) listed |= name == shard_file_name(s);
    if (name.ends_with(".tmp") || (name.starts_with("shard-") && !listed)) fs::remove(e.path());
  }
  for (std::size_t s = 0; s < done_shards; ++s) {
    const auto& e = manifest["shards"][s];
    if (e["file"] != shard_file_name(s) || e["first_window"] != plan.shards.at(s).first ||
        e["windows"] != plan.shards[s].second - plan.shards[s].first)
      throw store_error(store_error::code::manifest_invalid, opt.out.string(),
                        "shard " + std::to_string(s) + " is not the one this run plans");
    if (!fs::exists(opt.out / shard_file_name(s)))
      throw store_error(store_error::code::missing_shard, (opt.out / shard_file_name(s)).string(),
                        "listed in manifest.json but absent");
  }
  return manifest;
}

/// One teacher's columns of a shard: offsets, ids, spans, hidden states by key, top-k.
struct shard_columns {
  std::vector<std::int64_t> offsets{0}, spans;
  std::vector<std::int32_t> ids, topk_ids;
  std::vector<float> topk;
  std::vector<std::vector<std::byte>> hidden;
};

/// Appends a tapped state [n, H] to `dst` in the store's dtype (bf16: rounded to nearest even).
inline void append_hidden(std::vector<std::byte>& dst, const std::vector<float>& src, dtype hidden_type) {
  const std::size_t n = src.size(), at = dst.size();
  dst.resize(at + n * size_of(hidden_type));
  if (hidden_type == dtype::f32) std::memcpy(dst.data() + at, src.data(), n * 4);
  else
    for (std::size_t i = 0; i < n; ++i) {
      const auto h = to_bf16(src[i]);
      std::memcpy(dst.data() + at + 2 * i, &h, 2);
    }
}

/// The shard file of windows [first, end): shared window tensors, then each teacher's; widest
/// elements first for alignment.
inline std::vector<std::byte> serialize_shard(const extraction_plan& plan, std::size_t first, std::size_t end,
                                              const std::vector<shard_columns>& cols, const teacher_set& set,
                                              std::int64_t top_k, dtype hidden_type) {
  const std::int64_t W = std::int64_t(end - first);
  std::vector<std::int64_t> document, bytes;
  for (std::size_t w = first; w < end; ++w) {
    document.push_back(plan.windows[w].document);
    bytes.insert(bytes.end(), {plan.windows[w].begin, plan.windows[w].end});
  }
  std::vector<tensor_to_write> tensors;
  auto add = [&](std::string name, dtype type, std::vector<std::int64_t> shape, std::span<const std::byte> data) {
    tensors.push_back({std::move(name), type, std::move(shape), data});
  };
  add("windows.document", dtype::i64, {W}, std::as_bytes(std::span(document)));
  add("windows.bytes", dtype::i64, {W, 2}, std::as_bytes(std::span(bytes)));
  for (std::size_t t = 0; t < cols.size(); ++t) {
    const auto& c = cols[t];
    const std::int64_t N = c.offsets.back(), H = set.info(t).arch.dims.hidden_size;
    add(teacher_tensor(t, "window_offsets"), dtype::i64, {W + 1}, std::as_bytes(std::span(c.offsets)));
    add(teacher_tensor(t, "spans"), dtype::i64, {N, 2}, std::as_bytes(std::span(c.spans)));
    add(teacher_tensor(t, "ids"), dtype::i32, {N}, std::as_bytes(std::span(c.ids)));
    for (std::size_t kk = 0; kk < plan.keys[t].size(); ++kk)
      add(teacher_tensor(t, plan.keys[t][kk]), hidden_type, {N, H}, c.hidden[kk]);
    if (top_k > 0) {
      add(teacher_tensor(t, "topk_logprobs"), dtype::f32, {N, top_k}, std::as_bytes(std::span(c.topk)));
      add(teacher_tensor(t, "topk_ids"), dtype::i32, {N, top_k}, std::as_bytes(std::span(c.topk_ids)));
    }
  }
  std::stable_sort(tensors.begin(), tensors.end(),
                   [](const auto& a, const auto& b) { return size_of(a.type) > size_of(b.type); });
  return serialize_safetensors(tensors, {{"format", store_format}, {"first_window", std::to_string(first)}});
}

}  // namespace detail

/// Runs (or resumes) an extraction into opt.out. Throws store_error when opt.out holds another store.
inline extract_result extract(const extract_options& opt) {
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
  const auto plan = detail::plan_extraction(opt, set, hidden_type);
  const auto& windows = plan.windows;
  const auto& shards = plan.shards;
  const auto& keys = plan.keys;

  auto manifest = detail::open_store(opt, plan);
  auto save_manifest = [&] {
    const auto text = manifest.dump(2) + "\n";
    write_file_atomically(opt.out / "manifest.json", std::as_bytes(std::span(text.data(), text.size())));
  };
  if (!std::filesystem::exists(opt.out / "manifest.json")) save_manifest();
  const std::size_t done_shards = manifest["shards"].size();

  extract_result res;
  res.windows = std::int64_t(windows.size());
  res.shards = std::int64_t(shards.size());
  res.shards_resumed = std::int64_t(done_shards);
  extract_progress prog;
  prog.documents = plan.documents;
  for (std::size_t s = done_shards; s < shards.size(); ++s)
    for (std::size_t w = shards[s].first; w < shards[s].second; ++w)
      for (std::size_t t = 0; t < T; ++t) prog.tokens += std::int64_t(windows[w].ids[t].size());
  prog.documents_done = done_shards ? windows[shards[done_shards - 1].second - 1].document + 1 : 0;
  std::int64_t forwards = 0;

  for (std::size_t s = done_shards; s < shards.size(); ++s) {
    const auto [first, end] = shards[s];
    std::vector<detail::shard_columns> cols(T);
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
        const auto r = m.forward(ids, cache, {.all_logits = false, .chunk_rows = opt.chunk_rows, .taps = plan.taps[t]});
        std::size_t li = 0;
        for (std::size_t kk = 0; kk < keys[t].size(); ++kk) {
          const auto& src = keys[t][kk] == "final" ? r.taps.final_norm : r.taps.layers[li++];
          if (src.data.size() != ids.size() * H) throw usage_error("extract", "tap of unexpected size");
          detail::append_hidden(cols[t].hidden[kk], src.data, hidden_type);
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
    const auto file = detail::serialize_shard(plan, first, end, cols, set, opt.top_k, hidden_type);
    write_file_atomically(opt.out / shard_file_name(s), file);
    nlohmann::ordered_json entry = {{"file", shard_file_name(s)},
                                    {"first_window", first},
                                    {"windows", std::int64_t(end - first)},
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
    manifest["documents"] = plan.documents;
    save_manifest();
  }
  res.complete = true;
  res.seconds = std::chrono::duration<double>(clock::now() - started).count();
  res.resident = set.report();
  return res;
}

}  // namespace nexus::fusion
