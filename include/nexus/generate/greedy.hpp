// Greedy decoding with the KV cache: prefill the prompt once, then one token per step.
#pragma once

#include <algorithm>
#include <vector>

#include "nexus/backend/cpu/model.hpp"

namespace nexus {

/// First index of the largest value (torch.argmax's tie rule).
inline std::int32_t argmax(std::span<const float> v) {
  return static_cast<std::int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

struct greedy_result {
  std::vector<std::int32_t> tokens;        // new tokens only
  std::vector<std::vector<float>> logits;  // logits that chose each token
};

inline greedy_result greedy_generate(const model& m, std::span<const std::int32_t> prompt, std::int64_t new_tokens) {
  greedy_result g;
  auto cache = m.new_cache(std::int64_t(prompt.size()) + new_tokens);
  auto out = m.forward(prompt, cache, {.all_logits = false});
  for (std::int64_t i = 0; i < new_tokens; ++i) {
    const auto next = argmax(out.logits.data);
    g.tokens.push_back(next);
    g.logits.push_back(std::move(out.logits.data));
    if (i + 1 < new_tokens) out = m.forward(std::span(&g.tokens.back(), 1), cache, {.all_logits = false});
  }
  return g;
}

}  // namespace nexus
