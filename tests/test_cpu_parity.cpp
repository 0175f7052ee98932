// The CPU reference against transformers on every fixture: logits at every position, every
// layer's hidden state, 16 greedy tokens through the KV cache, and prefill+decode = recompute.
// Reference values: tests/data/models/<name>/outputs.safetensors (tools/fixtures).
#include <catch2/catch.hpp>

#include "nexus/generate/generate.hpp"
#include "nexus/model/parity.hpp"
#include "reference.hpp"

using namespace nexus;
namespace fs = std::filesystem;

namespace {


void check_parity(const std::vector<float>& ours, const std::vector<float>& ref, const std::string& what) {
  const auto s = compare(ours, ref);
  INFO(what << ": max|d| " << s.max_abs << " (max|ref| " << s.max_ref << "), NMSE " << s.nmse);
  CHECK(s.within());
}

}  // namespace

TEST_CASE("every family has fp32 and bf16 fixtures with reference outputs") {
  for (const auto* f : registry::families) {
    INFO(f->model_type);
    const auto dir = test::data_dir() / "models" / f->model_type;
    CHECK(fs::exists(dir / "outputs.safetensors"));
    CHECK(fs::exists(dir.string() + "_bf16/outputs.safetensors"));
  }
}

TEST_CASE("CPU logits, hidden states and greedy tokens match transformers") {
  const auto dirs = test::models_with_outputs();
  REQUIRE(dirs.size() >= 20);
  for (const auto& dir : dirs) {
    const std::string name = dir.filename().string();
    INFO("fixture " << name);
    const auto m = load_cpu_model(dir);
    const checkpoint ref(dir / "outputs.safetensors");
    for (int s = 0; ref.contains("seq" + std::to_string(s) + ".input_ids"); ++s) {
      const std::string seq = "seq" + std::to_string(s);
      INFO(seq);
      const auto ids = reference_ids(ref, seq + ".input_ids");
      auto cache = m->new_cache(std::int64_t(ids.size()));
      const auto out = m->forward(ids, cache, {.all_logits = true, .hidden_states = true});
      check_parity(out.logits.data, reference_floats(ref, seq + ".logits"), "logits");
      const auto L = m->arch().dims.num_layers;
      check_parity(out.hidden[0].data, reference_floats(ref, seq + ".embed"), "embed");
      for (std::int64_t l = 0; l < L; ++l)
        check_parity(out.hidden[std::size_t(l + 1)].data, reference_floats(ref, seq + ".layer" + std::to_string(l)), "layer " + std::to_string(l));
      check_parity(out.hidden.back().data, reference_floats(ref, seq + ".final"), "final norm");

      // 16 greedy tokens with the KV cache; the logits of every step too.
      const auto want = reference_ids(ref, seq + ".greedy");
      const auto g = greedy_generate(*m, ids, std::int64_t(want.size()));
      CHECK(g.tokens == want);
      const auto step_logits = reference_floats(ref, seq + ".greedy_logits");
      const auto vocab = std::size_t(m->arch().dims.vocab_size);
      for (std::size_t k = 0; k < g.logits.size(); ++k)
        check_parity(g.logits[k], {step_logits.begin() + std::ptrdiff_t(k * vocab), step_logits.begin() + std::ptrdiff_t((k + 1) * vocab)},
                     "greedy step " + std::to_string(k));

      // Prefill + decode must equal a full recompute over the same tokens. Not for dynamic NTK
      // RoPE: its frequencies depend on the sequence length, and cached keys keep those of the
      // step that wrote them — in transformers as here (the greedy check above covers it).
      const auto& rope = m->arch().position;
      if (rope.scaling.type == rope_scaling::dynamic || rope.sliding.scaling.type == rope_scaling::dynamic) continue;
      std::vector<std::int32_t> all(ids);
      all.insert(all.end(), g.tokens.begin(), g.tokens.end() - 1);
      auto fresh = m->new_cache(std::int64_t(all.size()));
      const auto full = m->forward(all, fresh).logits.data;
      for (std::size_t k = 0; k < g.logits.size(); ++k) {
        const auto row = ids.size() - 1 + k;
        check_parity(g.logits[k], {full.begin() + std::ptrdiff_t(row * vocab), full.begin() + std::ptrdiff_t((row + 1) * vocab)},
                     "recompute at step " + std::to_string(k));
      }
    }
  }
}
