// The CPU reference against transformers on every fixture: logits at every position, every
// layer's hidden state, 16 greedy tokens through the KV cache, and prefill+decode = recompute.
// Reference values: tests/data/models/<name>/outputs.safetensors (tools/fixtures).
#include <catch2/catch.hpp>

#include "nexus/generate/generate.hpp"
#include "nexus/generate/parity_check.hpp"
#include "reference.hpp"

using namespace nexus;
namespace fs = std::filesystem;

namespace {

void check_rows(const parity_report& rep) {
  REQUIRE(rep.sequences >= 3);
  for (const auto& r : rep.rows) {
    INFO(r.tensor << ": max|d| " << r.stats.max_abs << " (max|ref| " << r.stats.max_ref << "), NMSE " << r.stats.nmse);
    CHECK(r.ok);
  }
}

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
    // Every layer, the logits and the greedy tokens: the parity check the CLI and CUDA tests run.
    check_rows(check_parity(*m, ref));
    // The same in prefill steps of 16 tokens (joined by model::forward, as the CUDA backend's
    // 512-row steps are). Not for dynamic NTK RoPE or LongRoPE: their frequencies follow the length
    // of each step (as in transformers with a cache).
    if (const auto t = m->arch().position.scaling.type; t != rope_scaling::dynamic && t != rope_scaling::longrope) {
      INFO("in steps of 16 tokens");
      check_rows(check_parity(*m, ref, {}, 16));
    }
    for (int s = 0; ref.contains("seq" + std::to_string(s) + ".input_ids"); ++s) {
      const std::string seq = "seq" + std::to_string(s);
      INFO(seq);
      const auto ids = reference_ids(ref, seq + ".input_ids");
      // The logits of every greedy step (through the KV cache).
      const auto want = reference_ids(ref, seq + ".greedy");
      const auto g = greedy_generate(*m, ids, std::int64_t(want.size()));
      REQUIRE(g.tokens == want);
      const auto step_logits = reference_floats(ref, seq + ".greedy_logits");
      const auto vocab = std::size_t(m->arch().dims.vocab_size);
      for (std::size_t k = 0; k < g.logits.size(); ++k)
        check_parity(
            g.logits[k],
            {step_logits.begin() + std::ptrdiff_t(k * vocab), step_logits.begin() + std::ptrdiff_t((k + 1) * vocab)},
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
        check_parity(g.logits[k],
                     {full.begin() + std::ptrdiff_t(row * vocab), full.begin() + std::ptrdiff_t((row + 1) * vocab)},
                     "recompute at step " + std::to_string(k));
      }
    }
  }
}

TEST_CASE("a prompt longer than two 512-token prefill steps: every hidden state and the logits") {
  const auto dir = test::data_dir() / "models" / "llama_long";
  const checkpoint ref(dir / "outputs.safetensors");
  REQUIRE(reference_ids(ref, "seq2.input_ids").size() > 2 * 512);
  const auto m = load_cpu_model(dir);
  check_rows(check_parity(*m, ref, {}, 512));
  // One step and 512-token steps give the same numbers, and the same number of hidden states.
  const auto ids = reference_ids(ref, "seq2.input_ids");
  auto c1 = m->new_cache(std::int64_t(ids.size())), c2 = m->new_cache(std::int64_t(ids.size()));
  const auto whole = m->forward(ids, c1, {.hidden_states = true});
  const auto steps = m->forward(ids, c2, {.hidden_states = true, .chunk_rows = 512});
  REQUIRE(steps.hidden.size() == whole.hidden.size());
  for (std::size_t i = 0; i < whole.hidden.size(); ++i) {
    CHECK(steps.hidden[i].shape == whole.hidden[i].shape);
    CHECK(steps.hidden[i].data == whole.hidden[i].data);
  }
  CHECK(steps.logits.shape == whole.logits.shape);
  CHECK(steps.logits.data == whole.logits.data);
  // Only the last position's logits, in steps.
  auto c3 = m->new_cache(std::int64_t(ids.size()));
  const auto last = m->forward(ids, c3, {.all_logits = false, .chunk_rows = 512});
  REQUIRE(last.logits.shape == shape_t{1, m->arch().dims.vocab_size});
  // One row goes through the dot-product kernels, many through a GEMM: the same sums in another
  // order, so equal within the fp32 bounds rather than bit for bit.
  const std::vector<float> tail(whole.logits.data.end() - std::ptrdiff_t(last.logits.data.size()),
                                whole.logits.data.end());
  CHECK(compare(last.logits.data, tail).within());
}
