// Running a model against a reference outputs file: tools/fixtures' outputs.safetensors (every layer, the
// logits at every position, the greedy tokens of each recorded sequence), or the compact form of the real-model
// references (tools/fixtures/make_real_references.py: full logits rows at a few positions, top-k logits at every
// position, a few hidden-state rows, the greedy continuation). It sits above the backends and generation (it runs
// a model and decodes greedily); model/parity.hpp, below, only compares numbers.
#pragma once

#include "nexus/generate/generate.hpp"
#include <numeric>

#include "nexus/model/parity.hpp"

namespace nexus {

/// A compact reference has seq{i}.logit_positions.
inline bool is_compact_reference(const checkpoint& ref) { return ref.contains("seq0.logit_positions"); }

/// Greedy tokens after `ids`, compared with the reference's seq.greedy.
inline void check_greedy(const model& m, const checkpoint& ref, const std::string& seq,
                         const std::vector<std::int32_t>& ids, parity_report& rep) {
  const auto want = reference_ids(ref, seq + ".greedy");
  generate_options greedy;  // temperature 0: greedy, logits not kept
  greedy.max_new_tokens = std::int64_t(want.size());
  const bool same = generate(m, nullptr, ids, greedy).tokens == want;
  rep.rows.push_back({seq + ".greedy", {same ? 0.0 : 1.0, 0, 0}, same});
}

/// The compact form: rows "seq.logits" (the stored full rows), "seq.topk" (our logits at the reference's top-k
/// ids against its values), "seq.topk_ids" (max_abs: ranks whose id differs other than by a near tie, i.e. our
/// logit of the id we rank there is within twice the bound of the reference's value), hidden rows, "seq.greedy".
inline parity_report check_parity_compact(const model& m, const checkpoint& ref, const parity_bounds& bounds = {}) {
  parity_report rep;
  const auto vocab = std::size_t(m.arch().dims.vocab_size), hidden = std::size_t(m.arch().dims.hidden_size);
  auto gather = [](const std::vector<float>& all, std::size_t width, const std::vector<std::int32_t>& rows,
                   const std::string& what) {
    std::vector<float> out;
    for (const auto r : rows) {
      if (r < 0 || (std::size_t(r) + 1) * width > all.size())
        throw checkpoint_error(what, "position " + std::to_string(r) + " is outside the sequence");
      out.insert(out.end(), all.begin() + std::ptrdiff_t(std::size_t(r) * width),
                 all.begin() + std::ptrdiff_t((std::size_t(r) + 1) * width));
    }
    return out;
  };
  for (int s = 0; ref.contains("seq" + std::to_string(s) + ".input_ids"); ++s, ++rep.sequences) {
    const std::string seq = "seq" + std::to_string(s);
    const auto ids = reference_ids(ref, seq + ".input_ids");
    auto cache = m.new_cache(std::int64_t(ids.size()));
    const auto out = m.forward(ids, cache, {.all_logits = true, .hidden_states = true});
    auto row = [&](const std::string& name, std::span<const float> ours, std::span<const float> want) {
      const auto st = compare(ours, want);
      rep.rows.push_back({name, st, st.within(bounds)});
    };
    row(seq + ".logits", gather(out.logits.data, vocab, reference_ids(ref, seq + ".logit_positions"), seq),
        reference_floats(ref, seq + ".logits"));

    const auto top_ids = reference_ids(ref, seq + ".topk_ids");
    const auto top_values = reference_floats(ref, seq + ".topk_values");
    const auto T = ids.size(), K = top_ids.size() / std::max<std::size_t>(T, 1);
    if (K == 0 || top_ids.size() != T * K || top_values.size() != T * K)
      throw checkpoint_error(seq + ".topk_ids", "needs [T, K] ids and values");
    std::vector<float> ours_at_ref(T * K);
    double id_mismatches = 0;
    for (std::size_t p = 0; p < T; ++p) {
      const float* logits = out.logits.data.data() + p * vocab;
      std::vector<std::int32_t> order(vocab);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(K), order.end(),
                        [&](auto a, auto b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
      double scale = 1;
      for (std::size_t k = 0; k < K; ++k) scale = std::max(scale, std::abs(double(top_values[p * K + k])));
      const double tie = 2 * bounds.rel_max_abs * scale;
      for (std::size_t k = 0; k < K; ++k) {
        const auto id = top_ids[p * K + k];
        if (id < 0 || std::size_t(id) >= vocab)
          throw checkpoint_error(seq + ".topk_ids", "id " + std::to_string(id) + " is outside the vocabulary");
        ours_at_ref[p * K + k] = logits[id];
        if (order[k] != id && std::abs(double(logits[order[k]]) - double(top_values[p * K + k])) > tie) ++id_mismatches;
      }
    }
    row(seq + ".topk", ours_at_ref, top_values);
    rep.rows.push_back({seq + ".topk_ids", {id_mismatches, 0, 0}, id_mismatches == 0});

    const auto hidden_pos = reference_ids(ref, seq + ".hidden_positions");
    const auto L = out.hidden.size() - 2;  // hidden: embed, layer 0 .. L-1, final
    if (ref.contains(seq + ".embed"))
      row(seq + ".embed", gather(out.hidden.front().data, hidden, hidden_pos, seq),
          reference_floats(ref, seq + ".embed"));
    for (std::size_t l = 0; l < L; ++l)
      if (const auto name = seq + ".layer" + std::to_string(l); ref.contains(name))
        row(name, gather(out.hidden[l + 1].data, hidden, hidden_pos, seq), reference_floats(ref, name));
    if (ref.contains(seq + ".final"))
      row(seq + ".final", gather(out.hidden.back().data, hidden, hidden_pos, seq),
          reference_floats(ref, seq + ".final"));
    if (ref.contains(seq + ".greedy")) check_greedy(m, ref, seq, ids, rep);
  }
  if (rep.sequences == 0) throw checkpoint_error("reference", "no seq0.input_ids: not a reference outputs file");
  return rep;
}

/// `chunk_rows` > 0 runs each prompt in steps of that many tokens (model::forward), so that the
/// joined hidden states and logits of a multi-step prefill are checked too.
inline parity_report check_parity(const model& m, const checkpoint& ref, const parity_bounds& bounds = {},
                                  std::int64_t chunk_rows = 0) {
  if (is_compact_reference(ref)) return check_parity_compact(m, ref, bounds);
  parity_report rep;
  auto row = [&](const std::string& name, std::span<const float> ours) {
    const auto s = compare(ours, reference_floats(ref, name));
    rep.rows.push_back({name, s, s.within(bounds)});
  };
  for (int s = 0; ref.contains("seq" + std::to_string(s) + ".input_ids"); ++s, ++rep.sequences) {
    const std::string seq = "seq" + std::to_string(s);
    const auto ids = reference_ids(ref, seq + ".input_ids");
    auto cache = m.new_cache(std::int64_t(ids.size()));
    const auto out = m.forward(ids, cache, {.all_logits = true, .hidden_states = true, .chunk_rows = chunk_rows});
    row(seq + ".embed", out.hidden.front().data);
    for (std::size_t l = 1; l + 1 < out.hidden.size(); ++l)
      row(seq + ".layer" + std::to_string(l - 1), out.hidden[l].data);
    row(seq + ".final", out.hidden.back().data);
    row(seq + ".logits", out.logits.data);
    if (ref.contains(seq + ".greedy")) check_greedy(m, ref, seq, ids, rep);
  }
  if (rep.sequences == 0) throw checkpoint_error("reference", "no seq0.input_ids: not a reference outputs file");
  return rep;
}

}  // namespace nexus
