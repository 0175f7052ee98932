// `nexus score --stitch A:i,B:j --bridge FILE --text FILE`: teacher A up to layer i, the bridge, teacher B
// after layer j (nexus/fusion/bridges/stitch.hpp): bits per byte of the stitched model (same tokenizer), and at
// the shared boundaries B's next-token loss for B, the stitched path and B's unigram distribution, with
// the share of B's advantage over unigram the bridge carries.
#pragma once

#include <fmt/format.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/fusion/bridges/bridge.hpp"
#include "nexus/fusion/bridges/stitch.hpp"

namespace nexus::cli {

struct stitch_args {
  std::string stitch, bridge, heldout_of, unigram_store, unigram_text;
  std::vector<std::string> text;
  std::int64_t context = 512;
  int threads = 0;
  bool json = false;
};

/// "PATH:LAYER" -> (path, layer).
inline std::pair<std::string, std::int64_t> parse_model_layer(const std::string& spec) {
  const auto colon = spec.rfind(':');
  std::int64_t layer = 0;
  std::size_t used = 0;
  if (colon != std::string::npos) try {
      layer = std::stoll(spec.substr(colon + 1), &used);
    } catch (const std::exception&) {
      used = 0;
    }
  if (colon == std::string::npos || colon == 0 || used == 0 || colon + 1 + used != spec.size())
    throw usage_error("--stitch", "'" + spec + "' is not MODEL:LAYER (e.g. model.gguf:12, model-dir:-1)");
  return {spec.substr(0, colon), layer};
}

/// A bridge file as the function the stitch applies (per-row kinds without context only).
inline fusion::bridge_fn load_bridge_fn(const std::string& path) {
  using namespace nexus::fusion;
  const auto h = read_bridge_header(std::filesystem::path(path));
  return with_bridge_kind(h.kind, [&](auto k) -> bridge_fn {
    using K = decltype(k);
    if constexpr (K::per_row && !K::uses_context) {
      auto br = std::make_shared<const bridge<K, float>>(bridge<K, float>::load(path));
      return [br](std::span<const float> x) { return br->apply(x); };
    } else {
      throw usage_error("--bridge", path + ": a " + h.kind + " bridge does not map rows to rows");
    }
  });
}

/// The held-out documents of a store's corpus (its split by document), read from the corpus files the
/// store was made from, checked against the store's identity.
inline std::vector<std::string> heldout_documents(const std::string& dir) {
  using namespace nexus::fusion;
  const feature_store s(dir);
  const heldout_split split(s);
  if (!split.by_document()) throw usage_error("--heldout-of", dir + ": a one-document store holds out windows");
  const auto& m = s.manifest();
  if (!m.contains("sources")) throw usage_error("--heldout-of", dir + ": the manifest names no corpus files");
  std::vector<std::string> out;
  std::int64_t doc = 0;
  std::size_t i = 0;
  for (const auto& f : m["sources"]["corpus"]) {
    const std::filesystem::path p = f.get<std::string>();
    const auto& id = m["identity"]["corpus"][i++];
    if (sha256_file(p.string()) != id["sha256"].get<std::string>())
      throw usage_error("--heldout-of", p.string() + " is not the file the store was made from (sha256 differs)");
    for (auto& d : read_documents({p, p.extension() == ".jsonl"})) {
      std::int64_t window = 0;  // any window of the document: the split is by document here
      if (split.is_heldout(doc++, window)) out.push_back(std::move(d));
    }
  }
  return out;
}

/// The documents to score: those of the --text files, then the held-out documents of --heldout-of; and
/// where they come from, for the report.
inline std::pair<std::vector<std::string>, std::string> documents_to_score(const stitch_args& a) {
  using namespace nexus::fusion;
  std::vector<std::string> docs;
  std::string text_source;
  for (const auto& t : a.text) {
    const std::filesystem::path p = t;
    for (auto& d : read_documents({p, p.extension() == ".jsonl"})) docs.push_back(std::move(d));
    text_source += (text_source.empty() ? "" : ", ") + t;
  }
  if (!a.heldout_of.empty()) {
    for (auto& d : heldout_documents(a.heldout_of)) docs.push_back(std::move(d));
    text_source += (text_source.empty() ? "" : ", ") + std::string("held-out documents of ") + a.heldout_of;
  }
  if (docs.empty()) throw usage_error("--text", "no text to score (--text FILE or --heldout-of STORE)");
  return {std::move(docs), std::move(text_source)};
}

/// B's unigram distribution over its `vocab` tokens: from --unigram-store (the mean of B's stored top-k over
/// the store's training documents) or --unigram-text (B's tokens of a text); none without either.
inline std::optional<fusion::unigram> b_unigram(const stitch_args& a, const std::string& path_b, const tokenizer& tb,
                                                std::int64_t vocab) {
  using namespace nexus::fusion;
  if (!a.unigram_store.empty()) {
    const feature_store s(a.unigram_store);
    // B is the store's teacher with B's vocabulary and hidden size (by name first).
    std::size_t t = s.teachers();
    for (std::size_t i = 0; i < s.teachers(); ++i)
      if (s.teacher_name(i) == std::filesystem::path(path_b).filename().string()) t = i;
    if (t == s.teachers()) throw usage_error("--unigram-store", "no teacher named like " + path_b + " in the store");
    return unigram_from_store(s, t, vocab, heldout_split(s));
  }
  if (!a.unigram_text.empty()) {
    std::vector<std::int32_t> ids;
    const std::filesystem::path p = a.unigram_text;
    for (const auto& d : read_documents({p, p.extension() == ".jsonl"})) {
      const auto e = tb.encode(d, false);
      ids.insert(ids.end(), e.begin(), e.end());
    }
    return unigram_from_ids(
        ids, vocab, "B's " + std::to_string(ids.size()) + " tokens of " + a.unigram_text + ", add-one smoothed");
  }
  return std::nullopt;
}

inline int score_stitched(const stitch_args& a) {
  using namespace nexus::fusion;
  const auto comma = a.stitch.find(',');
  if (comma == std::string::npos) throw usage_error("--stitch", "expected A:i,B:j");
  const auto [path_a, layer_a] = parse_model_layer(a.stitch.substr(0, comma));
  const auto [path_b, layer_b] = parse_model_layer(a.stitch.substr(comma + 1));
  const auto [docs, text_source] = documents_to_score(a);
  const cpu_options cpu{.threads = a.threads};
  const auto ma = load_cpu_model(path_a, cpu), mb = load_cpu_model(path_b, cpu);
  const auto ta = tokenizer::load(path_a), tb = tokenizer::load(path_b);
  const auto head = frozen_head::load(path_b, a.threads);
  const auto fn = load_bridge_fn(a.bridge);
  const auto uni = b_unigram(a, path_b, tb, mb->arch().dims.vocab_size);
  stitch_options o;
  o.layer_a = layer_a, o.layer_b = layer_b, o.context = a.context;
  const auto s = score_stitch(*ma, ta, *mb, tb, fn, head, uni ? &*uni : nullptr, docs, o);
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(); };
  nlohmann::ordered_json j = {{"stitch", a.stitch},
                              {"bridge", a.bridge},
                              {"text", text_source},
                              {"documents", s.documents},
                              {"windows", s.windows},
                              {"bytes", s.bytes},
                              {"same_tokenizer", s.same_tokenizer}};
  if (s.same_tokenizer)
    j["bits_per_byte"] = {
        {"tokens", s.tokens}, {"a", num(s.bpb_a)}, {"b", num(s.bpb_b)}, {"stitched", num(s.bpb_stitched)}};
  if (s.boundaries > 0)
    j["shared_boundaries"] = {{"count", s.boundaries},
                              {"loss_b", num(s.loss_b)},
                              {"loss_stitched", num(s.loss_stitched)},
                              {"loss_unigram", num(s.loss_unigram)},
                              {"share", num(s.share)},
                              {"unigram", uni ? uni->source : std::string("none given")},
                              {"unit", "nats per next token of B"}};
  if (a.json) {
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("score {} with {} on {} ({} documents, {} bytes)\n", a.stitch, a.bridge, text_source, s.documents,
             s.bytes);
  if (s.same_tokenizer)
    fmt::print("  bits per byte over {} tokens: A {:.4f}  B {:.4f}  stitched {:.4f}\n", s.tokens, s.bpb_a, s.bpb_b,
               s.bpb_stitched);
  if (s.boundaries > 0) {
    fmt::print("  B's next-token loss at {} shared boundaries (nats): B {:.4f}  stitched {:.4f}", s.boundaries,
               s.loss_b, s.loss_stitched);
    if (uni)
      fmt::print("  unigram {:.4f}\n  share of B's advantage over unigram carried: {:.4f}\n", s.loss_unigram, s.share);
    else fmt::print("\n");
  }
  return 0;
}

}  // namespace nexus::cli
