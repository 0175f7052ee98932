// The tiny llama fixture with a wider vocabulary, shared by the byte-level tests: a larger tokenizer
// (3000 tokens with byte fallback, the GPT-2 and Gemma ones) needs a model that emits every id.
#pragma once

#include <cstdint>
#include <memory>
#include <random>

#include "nexus/backend/cpu/model.hpp"
#include "nexus/registry/open.hpp"
#include "reference.hpp"

namespace nexus::test {

/// The tiny llama fixture with its vocabulary widened to `vocab` ids: random (seeded) embedding and
/// head, so that a larger tokenizer can be paired with a model.
inline std::unique_ptr<model> widened_llama(std::int64_t vocab, std::uint32_t seed) {
  const auto o = registry::open_checkpoint(test::data_dir() / "models" / "llama");
  descriptor n = o.arch;
  auto w = unpack_weights(o.bound, n);
  const auto hidden = n.dims.hidden_size;
  n.dims.vocab_size = vocab;
  std::mt19937 rng(seed);
  auto random = [&](float scale) {
    tensor_f32 t{{vocab, hidden}, std::vector<float>(std::size_t(vocab * hidden))};
    for (auto& x : t.data) x = scale * (float(rng() % 20001) / 10000.0f - 1.0f);
    return t;
  };
  w["embed.tokens.weight"] = random(1.0f);
  if (!n.embedding.tied) w["lm_head.weight"] = random(0.6f);
  return make_cpu_model(n, std::move(w), {.threads = 1});
}

}  // namespace nexus::test
