// Running a model against a reference outputs file (tools/fixtures' outputs.safetensors):
// every layer, the logits, and the greedy tokens of each recorded sequence. It sits above the
// backends and generation (it runs a model and decodes greedily); model/parity.hpp, below, only
// compares numbers.
#pragma once

#include "nexus/generate/generate.hpp"
#include "nexus/model/parity.hpp"

namespace nexus {

/// `chunk_rows` > 0 runs each prompt in steps of that many tokens (model::forward), so that the
/// joined hidden states and logits of a multi-step prefill are checked too.
inline parity_report check_parity(const model& m, const checkpoint& ref, const parity_bounds& bounds = {}, std::int64_t chunk_rows = 0) {
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
    for (std::size_t l = 1; l + 1 < out.hidden.size(); ++l) row(seq + ".layer" + std::to_string(l - 1), out.hidden[l].data);
    row(seq + ".final", out.hidden.back().data);
    row(seq + ".logits", out.logits.data);
    if (ref.contains(seq + ".greedy")) {
      const auto want = reference_ids(ref, seq + ".greedy");
      generate_options greedy;  // temperature 0: greedy, logits not kept
      greedy.max_new_tokens = std::int64_t(want.size());
      const bool same = generate(m, nullptr, ids, greedy).tokens == want;
      rep.rows.push_back({seq + ".greedy", {same ? 0.0 : 1.0, 0, 0}, same});
    }
  }
  if (rep.sequences == 0) throw checkpoint_error("reference", "no seq0.input_ids: not a reference outputs file");
  return rep;
}

}  // namespace nexus
