// `nexus score MODEL --text FILE [--end] [--json]`: bits per byte of a text under one teacher, byte-level
// (nexus/fusion/bytes/byte_level.hpp: every tokenization marginalised) and under its canonical tokenization,
// with the speed of each; under a .nexus bundle, each teacher's and each fused mode's (--mode: one mode
// alone, as it saves work); with --stitch, a
// stitched pair of teachers (score_stitch.hpp).
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "../command.hpp"
#include "../options.hpp"
#include "nexus/backend/cpu/model.hpp"
#include "nexus/fusion/bytes/byte_level.hpp"
#include "nexus/fusion/system/system.hpp"
#include "score_stitch.hpp"

namespace nexus::cli {

struct score_args {
  std::string model, text_file;
  bool json = false, with_end = false;
  int threads = 0;
  std::string mode;  // a bundle: empty (every mode), mixture, cascade or router
};

/// One mode of a bundle alone, computing only what it needs (fusion/system/score.hpp: run_mixture,
/// run_cascade, run_router): its bits per byte and seconds, and per teacher the bytes it read and decided.
inline int score_mode(fusion::fused_system& sys, const score_args& a, const std::string& text) {
  const auto mode = fusion::parse_system_mode(a.mode);
  const auto r = sys.run(mode, text);
  const double bpb = r.nats / (std::log(2.0) * double(text.size()));
  const auto& names = sys.manifest().teachers;
  if (a.json) {
    nlohmann::ordered_json j;
    j["bundle"] = a.model;
    j["text"] = a.text_file;
    j["bytes"] = text.size();
    j["mode"] = a.mode;
    j.update(sys.report(mode, r, text.size()));
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("score {} --mode {}: {} bytes, {:.4f} bits/byte, {:.1f} s", a.model, a.mode, text.size(), bpb, r.seconds);
  if (mode == fusion::system_mode::cascade)
    fmt::print(" ({:.1f}% of bytes escalated)", 100.0 * double(r.escalated) / double(text.size()));
  if (r.routed) fmt::print(" (routed to {})", names[*r.routed].name);
  fmt::print("\n");
  for (std::size_t k = 0; k < r.teachers.size(); ++k)
    fmt::print("  {:<24} read {} bytes, decided {}, {} tokens run, {:.1f} s\n", names[k].name, r.teachers[k].bytes_read,
               r.teachers[k].bytes_decided, r.teachers[k].forward_tokens, r.teachers[k].seconds);
  return 0;
}

/// A teacher scoring its canonical tokenization, timed (the baseline of its byte-level view's cost).
struct canonical_result {
  double log_likelihood = 0, seconds = 0;
  std::size_t tokens = 0;
};
inline canonical_result canonical_run(const model& m, const tokenizer& tok, std::string_view text, bool with_end) {
  const auto t0 = std::chrono::steady_clock::now();
  canonical_result r;
  r.log_likelihood = fusion::canonical_log_likelihood(m, tok, text, with_end, &r.tokens);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

/// A byte-level view's cost against the same teacher's canonical run: the JSON fields of `nexus score`.
inline nlohmann::ordered_json cost_against_canonical(std::size_t forward_tokens, double seconds,
                                                     const canonical_result& c) {
  return {{"forward_tokens_per_canonical_token", double(forward_tokens) / double(std::max<std::size_t>(c.tokens, 1))},
          {"seconds_per_canonical_second", seconds / c.seconds},
          {"pruned_mass_bound", 0.0}};  // nothing is pruned: every valid cover is summed
}

/// A bundle: each teacher's and every mode's byte-level bits per byte (--mode: that mode alone).
inline int score_bundle(const score_args& a, const std::string& text) {
  auto sys = fusion::load_bundle(a.model, {.cpu = {.threads = a.threads}});
  if (!a.mode.empty()) return score_mode(sys, a, text);
  const auto s = sys.score(text);
  if (a.json) {
    nlohmann::ordered_json j;
    j["bundle"] = a.model;
    j["text"] = a.text_file;
    j["bytes"] = s.bytes;
    auto t = nlohmann::ordered_json::array();
    for (std::size_t k = 0; k < s.teachers.size(); ++k) {  // beside each, the same teacher scoring its canonical tokens
      const auto& x = s.teachers[k];
      const auto c = canonical_run(sys.teachers().get(k), sys.teachers().tok(k), text, false);
      nlohmann::ordered_json one = {{"name", x.name},
                                    {"bits_per_byte", x.bits_per_byte},
                                    {"seconds", x.seconds},
                                    {"forward_tokens", x.forward_tokens},
                                    {"canonical_tokens", c.tokens},
                                    {"canonical_seconds", c.seconds}};
      one.update(cost_against_canonical(x.forward_tokens, x.seconds, c));
      t.push_back(std::move(one));
    }
    j["teachers"] = std::move(t);
    j["mixture"] = {{"kind", s.mixture}, {"weights", sys.weights()}, {"bits_per_byte", s.bits_per_byte}};
    if (s.cascade_bits_per_byte)
      j["cascade"] = {{"order", sys.cascade_order()},
                      {"bits_per_byte", *s.cascade_bits_per_byte},
                      {"escalated_share", *s.cascade_escalated}};
    if (s.routed_teacher)
      j["router"] = {{"teacher", sys.manifest().teachers[*s.routed_teacher].name},
                     {"bits_per_byte", s.teachers[*s.routed_teacher].bits_per_byte}};
    j["seconds"] = s.seconds;  // the system's: every teacher's byte-level view and the modes (not the canonical runs)
    j["bytes_per_second"] = double(s.bytes) / s.seconds;
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("score {}: {} bytes\n", a.model, s.bytes);
  for (const auto& x : s.teachers)
    fmt::print("  {:<24} {:.4f} bits/byte  {:.1f} s\n", x.name, x.bits_per_byte, x.seconds);
  fmt::print("  {:<24} {:.4f} bits/byte  (weights {:.4f})\n", "mixture (" + s.mixture + ")", s.bits_per_byte,
             fmt::join(sys.weights(), ", "));
  if (s.cascade_bits_per_byte)
    fmt::print("  {:<24} {:.4f} bits/byte  ({:.1f}% of bytes escalated)\n", "cascade", *s.cascade_bits_per_byte,
               100 * *s.cascade_escalated);
  if (s.routed_teacher)
    fmt::print("  {:<24} {:.4f} bits/byte  (routed to {})\n", "router", s.teachers[*s.routed_teacher].bits_per_byte,
               sys.manifest().teachers[*s.routed_teacher].name);
  return 0;
}

inline int score(const score_args& a) {
  std::ifstream in(a.text_file, std::ios::binary);
  if (!in) throw usage_error("--text", "cannot read " + a.text_file);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  if (std::filesystem::path(a.model).extension() == ".nexus") return score_bundle(a, text);
  const auto m = load_cpu_model(a.model, {.threads = a.threads});
  const auto tok = tokenizer::load(a.model);

  const auto c = canonical_run(*m, tok, text, a.with_end);
  const auto b = fusion::score_bytes(*m, tok, text, a.with_end);

  const double n = double(text.size()), ln2 = std::log(2.0);
  const double bpb = -b.log_likelihood / (n * ln2), canonical_bpb = -c.log_likelihood / (n * ln2);
  const double gain = c.log_likelihood != 0 ? (b.log_likelihood - c.log_likelihood) / std::abs(c.log_likelihood) : 0;
  const auto& st = b.stats;
  if (a.json) {
    nlohmann::ordered_json j;
    j["model"] = a.model;
    j["text"] = a.text_file;
    j["bytes"] = text.size();
    j["with_end_of_text"] = a.with_end;
    j["threads"] = a.threads;
    j["byte_level"] = {{"log_likelihood", b.log_likelihood},
                       {"bits_per_byte", bpb},
                       {"seconds", b.seconds},
                       {"bytes_per_second", n / b.seconds},
                       {"forward_tokens", st.forward_tokens},
                       {"forward_tokens_per_second", double(st.forward_tokens) / b.seconds},
                       {"bases_created", st.bases_created},
                       {"cover_max", st.max_live},
                       {"cover_mean", double(st.live_sum) / double(st.bytes + 1)},
                       {"range_mean", double(st.range_sum) / double(st.bytes + 1)}};
    j["byte_level"].update(cost_against_canonical(st.forward_tokens, b.seconds, c));
    j["canonical"] = {{"log_likelihood", c.log_likelihood},
                      {"bits_per_byte", canonical_bpb},
                      {"tokens", c.tokens},
                      {"seconds", c.seconds},
                      {"tokens_per_second", double(c.tokens) / c.seconds},
                      {"bytes_per_second", n / c.seconds}};
    j["byte_level_minus_canonical_relative"] = gain;
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("score {}: {} bytes, {} canonical tokens{}\n", a.model, text.size(), c.tokens,
             a.with_end ? " (with the end of text)" : "");
  fmt::print(
      "  byte-level  {:.4f} bits/byte  log-likelihood {:.3f}  {:.1f} s  {:.1f} bytes/s  {:.1f} forward tok/s  "
      "cover max {} mean {:.2f}\n",
      bpb, b.log_likelihood, b.seconds, n / b.seconds, double(st.forward_tokens) / b.seconds, st.max_live,
      double(st.live_sum) / double(st.bytes + 1));
  fmt::print("  canonical   {:.4f} bits/byte  log-likelihood {:.3f}  {:.1f} s  {:.1f} tok/s\n", canonical_bpb,
             c.log_likelihood, c.seconds, double(c.tokens) / c.seconds);
  fmt::print("  byte-level − canonical: {:+.3f} nats ({:+.3f}% of |canonical|)\n", b.log_likelihood - c.log_likelihood,
             100 * gain);
  return 0;
}

/// One `score`: a model or bundle scored byte by byte, or (--stitch) a stitched pair of teachers.
class score_command : public command {
 public:
  void add(CLI::App& app) override {
    sub_ = app.add_subcommand(
        "score",
        "Bits per byte of a text under a model or a .nexus bundle (byte-level and canonical), or of a stitched pair");
    sub_->add_option("model", score_.model,
                     "checkpoint folder, .gguf file, Hugging Face id or .nexus bundle (not with --stitch)")
        ->transform(model_name);
    sub_->add_option("--text", texts_, "UTF-8 text file (--stitch: several, .jsonl one document a line)")
        ->check(CLI::ExistingFile);
    sub_->add_flag("--end", score_.with_end, "also score the end of the text (the eos token / end-of-text outcome)");
    sub_->add_flag("--json", score_.json, "print one JSON object");
    sub_->add_option("--mode", score_.mode,
                     "a .nexus bundle: one mode alone, computing only what it needs: mixture (every teacher), "
                     "cascade (a later teacher read only where reached), router (only the teacher it picks); "
                     "default: every teacher and mode")
        ->check(CLI::IsMember({"mixture", "cascade", "router"}));
    add_threads_option(*sub_, score_.threads);
    sub_->add_option("--stitch", stitch_.stitch, "A:i,B:j with A and B checkpoint folders or .gguf files");
    sub_->add_option("--bridge", stitch_.bridge, "with --stitch: bridge file (nexus train-bridge)")
        ->check(CLI::ExistingFile);
    sub_->add_option("--heldout-of", stitch_.heldout_of, "with --stitch: score the held-out documents of this store")
        ->check(CLI::ExistingDirectory);
    sub_->add_option("--unigram-store", stitch_.unigram_store,
                     "with --stitch: B's unigram, the mean of its stored top-k over this store's training documents")
        ->check(CLI::ExistingDirectory);
    sub_->add_option("--unigram-text", stitch_.unigram_text, "with --stitch: B's unigram from its tokens of this text")
        ->check(CLI::ExistingFile);
    sub_->add_option("--context", stitch_.context, "with --stitch: tokens per window")->check(CLI::Range(2, 1 << 20));
  }

  int run() override {
    if (!stitch_.stitch.empty()) {
      if (!score_.model.empty()) throw usage_error("score", "give a model or --stitch, not both");
      if (stitch_.bridge.empty()) throw usage_error("score", "--stitch needs --bridge");
      stitch_.text = texts_, stitch_.json = score_.json, stitch_.threads = score_.threads;
      return score_stitched(stitch_);
    }
    if (score_.model.empty()) throw usage_error("score", "give a model, a .nexus bundle, or --stitch");
    if (texts_.size() != 1) throw usage_error("score", "give one --text file");
    if (fs::path(score_.model).extension() != ".nexus") refuse({"--mode"}, "only for a .nexus bundle");
    else refuse({"--end"}, "not for a .nexus bundle yet (its modes score the bytes)");
    score_.text_file = texts_[0];
    return score(score_);
  }

 private:
  score_args score_;
  stitch_args stitch_;
  std::vector<std::string> texts_;
};

}  // namespace nexus::cli
