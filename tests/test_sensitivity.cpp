// The fixtures can catch mistakes: flipping any one trait moves the logits by at least 100× the
// parity tolerance on at least one fixture. If a flip did not, a wrong implementation of that
// trait could pass the parity test unnoticed.
#include <catch2/catch.hpp>

#include "nexus/backend/cpu/model.hpp"
#include "nexus/model/parity.hpp"
#include "reference.hpp"

using namespace nexus;

namespace {

struct fixture {
  descriptor n;
  weight_map w;
  std::vector<std::int32_t> ids;
  std::vector<float> ref;  // transformers' logits for ids
};

fixture load(const std::string& name, const block_traits& expected) {
  const auto dir = test::data_dir() / "models" / name;
  const auto o = registry::open_checkpoint(dir);
  fixture f;
  f.n = o.arch;
  INFO(name << ": " << describe_traits(traits_of(f.n)));
  REQUIRE(traits_of(f.n) == expected);  // the fixture is what the flips below assume
  f.w = unpack_weights(o.bound, f.n);
  const checkpoint out(dir / "outputs.safetensors");
  f.ids = reference_ids(out, "seq2.input_ids");
  f.ref = reference_floats(out, "seq2.logits");
  return f;
}

/// The traits of a fixture, spelt out: each must be an instantiation Nexus ships, and the test
/// checks at run time that the fixture's descriptor has exactly these (no index into the list).
constexpr bool shipped(const block_traits& t) {
  for (const auto& s : supported_blocks)
    if (s == t) return true;
  return false;
}
constexpr block_traits llama_like{norm_kind::rms, norm_placement::pre, position_kind::rope,      rope_style::neox,
                                  true,           activation::silu,    residual_form::sequential};
constexpr block_traits gemma_like = [] {
  auto t = llama_like;
  t.act = activation::gelu_tanh;
  return t;
}();
constexpr block_traits gemma2_like = [] {
  auto t = gemma_like;
  t.placement = norm_placement::sandwich;
  return t;
}();
constexpr block_traits gpt2_like{
    norm_kind::layer,      norm_placement::pre,      position_kind::learned, rope_style::neox, false,
    activation::gelu_tanh, residual_form::sequential};
constexpr block_traits gpt_neox_like{norm_kind::layer,
                                     norm_placement::pre,
                                     position_kind::rope,
                                     rope_style::neox,
                                     false,
                                     activation::gelu,
                                     residual_form::parallel_two_norms};
static_assert(shipped(llama_like) && shipped(gemma_like) && shipped(gemma2_like) && shipped(gpt2_like) &&
              shipped(gpt_neox_like));

/// Logits of `f` run as traits T with descriptor `n` (the flipped one).
template <block_traits T>
std::vector<float> logits_as(const fixture& f, const descriptor& n) {
  const cpu::universal_model<T> m(n, view_f32(f.w), shared_thread_pool(0));
  auto cache = m.new_cache(std::int64_t(f.ids.size()));
  return m.forward(f.ids, cache).logits.data;
}

/// The flip must move the logits far outside the tolerance, while the unflipped model is inside.
void check_visible(const fixture& f, const std::vector<float>& unflipped, const std::vector<float>& flipped,
                   const char* trait) {
  INFO(trait);
  const auto base = compare(unflipped, f.ref);
  REQUIRE(base.within());
  const auto moved = compare(flipped, f.ref);
  const double tolerance = parity_bounds{}.rel_max_abs * std::max(1.0, moved.max_ref);
  INFO("flipped max|d| " << moved.max_abs << ", tolerance " << tolerance);
  CHECK(moved.max_abs >= 100 * tolerance);
}

template <block_traits T>
constexpr block_traits with(auto change) {
  block_traits t = T;
  change(t);
  return t;
}

}  // namespace

TEST_CASE("flipping each trait moves the logits far beyond the tolerance") {
  {
    const auto f = load("llama", llama_like);
    constexpr auto T = llama_like;
    const auto base = logits_as<T>(f, f.n);
    check_visible(f, base, logits_as<with<T>([](auto& t) { t.rope = rope_style::interleaved; })>(f, f.n), "rope style");
    check_visible(f, base, logits_as<with<T>([](auto& t) { t.act = activation::gelu; })>(f, f.n), "activation");
    check_visible(f, base, logits_as<with<T>([](auto& t) { t.norm = norm_kind::layer_no_bias; })>(f, f.n),
                  "norm kind rms -> layer");
  }
  {
    const auto f = load("gpt2", gpt2_like);
    constexpr auto T = gpt2_like;
    const auto base = logits_as<T>(f, f.n);
    check_visible(f, base, logits_as<with<T>([](auto& t) { t.norm = norm_kind::rms; })>(f, f.n),
                  "norm kind layer -> rms");
  }
  {
    const auto f = load("gemma", gemma_like);
    auto n = f.n;
    n.norm.unit_offset = false;
    check_visible(f, logits_as<gemma_like>(f, f.n), logits_as<gemma_like>(f, n), "1+w norm");
  }
  {
    const auto f = load("gpt_neox", gpt_neox_like);
    constexpr auto T = gpt_neox_like;
    const auto base = logits_as<T>(f, f.n);
    auto n = f.n;
    n.residual = residual_form::sequential;
    check_visible(f, base, logits_as<with<T>([](auto& t) { t.residual = residual_form::sequential; })>(f, n),
                  "residual form");
  }
  {
    const auto f = load("qwen3", llama_like);
    auto n = f.n;
    n.norm.qk = qk_norm::none;
    check_visible(f, logits_as<llama_like>(f, f.n), logits_as<llama_like>(f, n), "qk-norm");
  }
  {
    constexpr auto T = gemma2_like;
    const auto f = load("gemma2_softcap", gemma2_like);  // caps small enough to bite (gemma2's own 50/30 barely do)
    const auto base = logits_as<T>(f, f.n);
    auto n = f.n;
    n.attention.softcap = 0;
    check_visible(f, base, logits_as<T>(f, n), "attention softcap");
    n = f.n;
    n.head.final_softcap = 0;
    check_visible(f, base, logits_as<T>(f, n), "final softcap");
    const auto g = load("gemma2", gemma2_like);
    n = g.n;
    n.norm.placement = norm_placement::pre;
    check_visible(g, logits_as<T>(g, g.n), logits_as<with<T>([](auto& t) { t.placement = norm_placement::pre; })>(g, n),
                  "sandwich placement");
  }
  {
    constexpr auto T = gemma2_like;                        // Gemma 3 runs on the gemma2 instantiation
    const auto f = load("gemma3_text_rope", gemma2_like);  // local base 100 vs 10000 scaled by 4, window 8 of 40 tokens
    const auto base = logits_as<T>(f, f.n);
    auto n = f.n;
    n.position.sliding = {};  // sliding layers rotate like the global ones
    check_visible(f, base, logits_as<T>(f, n), "sliding layers' rope base");
    n = f.n;
    for (auto& kind : n.attention.layers)
      kind = kind == layer_attention::sliding ? layer_attention::full : layer_attention::sliding;
    check_visible(f, base, logits_as<T>(f, n), "layer pattern (sliding <-> full)");
    n = f.n;
    n.position.scaling = {};
    check_visible(f, base, logits_as<T>(f, n), "global layers' rope scaling");
    const auto g = load("gemma3_text", gemma2_like);
    n = g.n;
    n.norm.qk = qk_norm::none;
    check_visible(g, logits_as<T>(g, g.n), logits_as<T>(g, n), "gemma3 qk-norm");
  }
  {
    const auto f = load("mistral", llama_like);
    auto n = f.n;
    n.attention.sliding_window = 0;
    check_visible(f, logits_as<llama_like>(f, f.n), logits_as<llama_like>(f, n), "sliding window");
  }
}

TEST_CASE("flipping each trait of the issue-17 families moves the logits far beyond the tolerance") {
  constexpr auto T = llama_like;
  {  // Granite's four multipliers
    const auto f = load("granite", llama_like);
    const auto base = logits_as<T>(f, f.n);
    auto n = f.n;
    n.residual_scale = 1.0;
    check_visible(f, base, logits_as<T>(f, n), "residual multiplier");
    n = f.n;
    n.embedding.scale = 1.0;
    check_visible(f, base, logits_as<T>(f, n), "embedding multiplier");
    n = f.n;
    n.attention.scale = 1.0 / std::sqrt(double(n.dims.head_dim));
    check_visible(f, base, logits_as<T>(f, n), "attention multiplier");
    n = f.n;
    n.head.logit_scale = 1.0;
    check_visible(f, base, logits_as<T>(f, n), "logits scaling");
  }
  {  // SmolLM3: the layers without RoPE
    const auto f = load("smollm3", llama_like);
    REQUIRE(!f.n.position.unrotated_layers.empty());
    auto n = f.n;
    n.position.unrotated_layers.clear();
    check_visible(f, logits_as<T>(f, f.n), logits_as<T>(f, n), "layers without rope");
  }
  {  // Qwen-2-MoE: router order (softmax then top-k, unnormalised), the shared expert's gate
    const auto f = load("qwen2_moe", llama_like);
    REQUIRE(!f.n.moe.norm_topk);
    const auto base = logits_as<T>(f, f.n);
    auto n = f.n;
    n.moe.order = router_order::topk_softmax;
    check_visible(f, base, logits_as<T>(f, n), "router order");
    n = f.n;
    n.moe.shared_gate = false;  // its weight stays, unread
    check_visible(f, base, logits_as<T>(f, n), "shared expert gate");
    n = f.n;
    n.moe.top_k = 1;
    check_visible(f, base, logits_as<T>(f, n), "experts per token");
  }
  {  // Qwen-3-MoE: norm_topk_prob
    const auto f = load("qwen3_moe", llama_like);
    REQUIRE(f.n.moe.norm_topk);
    auto n = f.n;
    n.moe.norm_topk = false;
    check_visible(f, logits_as<T>(f, f.n), logits_as<T>(f, n), "norm_topk_prob");
  }
  {  // OLMo-3: sliding layers rotate with default RoPE while full ones are scaled
    constexpr block_traits olmo2_like{norm_kind::rms, norm_placement::post, position_kind::rope,      rope_style::neox,
                                      true,           activation::silu,     residual_form::sequential};
    static_assert(shipped(olmo2_like));
    const auto f = load("olmo3", olmo2_like);
    REQUIRE(has_sliding_rope(f.n.position));
    auto n = f.n;
    n.position.sliding = {};
    check_visible(f, logits_as<olmo2_like>(f, f.n), logits_as<olmo2_like>(f, n), "olmo3 sliding layers' default rope");
  }
  {  // StableLM: partial rotary (2 of 8 dims)
    constexpr block_traits stablelm_like{
        norm_kind::layer, norm_placement::pre,      position_kind::rope, rope_style::neox, true,
        activation::silu, residual_form::sequential};
    static_assert(shipped(stablelm_like));
    const auto f = load("stablelm", stablelm_like);
    auto n = f.n;
    n.position.rotary_dim = n.dims.head_dim;
    check_visible(f, logits_as<stablelm_like>(f, f.n), logits_as<stablelm_like>(f, n), "partial rotary");
  }
}
