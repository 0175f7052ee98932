// The universal transformer on the CPU: one templated block covers every family; the traits
// (nexus/model/block_traits.hpp) fix the shape-critical choices at compile time, the descriptor
// supplies every runtime value. Activations are fp32; weights stay in their stored format (or are
// widened once, weight_precision::fp32) and the kernels compute on them. This is the ground truth
// the CUDA kernels are checked against.
#pragma once

#include <filesystem>
#include <memory>
#include <numeric>
#include <span>

#include "nexus/backend/cpu/linear.hpp"
#include "nexus/backend/cpu/ops.hpp"
#include "nexus/model/kv_cache.hpp"
#include "nexus/model/model.hpp"
#include "nexus/model/traits.hpp"
#include "nexus/model/weights.hpp"
#include "nexus/registry/open.hpp"

namespace nexus {

namespace cpu {

template <block_traits T>
class universal_model final : public model {
 public:
  universal_model(descriptor n, stored_weights w, std::shared_ptr<thread_pool> pool)
      : model(std::move(n)), w_(std::move(w)), pool_(std::move(pool)) {
    // Vectors (norm weights, biases) are small: fp32 copies, read directly by the elementwise code.
    for (const auto& [name, t] : w_)
      if (t.shape.size() == 1) vectors_[name] = t.to_f32().data;
    const auto& d = n_.dims;
    tok_ = &need("embed.tokens.weight");
    if constexpr (T.position == position_kind::learned) pos_ = &need("embed.positions.weight");
    for (std::int64_t l = 0; l < d.num_layers; ++l) {
      const std::string p = "layers." + std::to_string(l) + ".";
      layer_weights L;
      // Which norms exist follows from the traits and qk-norm, never from which weights
      // happen to be present.
      constexpr auto has = norms_of(T.placement, T.residual);
      L.attn_norm = norm_of(p + "attn_norm", has.attn);
      L.mlp_norm = norm_of(p + "mlp_norm", has.mlp);
      L.attn_post_norm = norm_of(p + "attn_post_norm", has.attn_post);
      L.mlp_post_norm = norm_of(p + "mlp_post_norm", has.mlp_post);
      L.q_norm = norm_of(p + "attn.q_norm", n_.norm.qk != qk_norm::none);
      L.k_norm = norm_of(p + "attn.k_norm", n_.norm.qk != qk_norm::none);
      if (n_.is_sparse_layer(l)) load_experts(p, L);
      for (auto [dst, name] : {std::pair{&L.q, "attn.q"},
                               {&L.k, "attn.k"},
                               {&L.v, "attn.v"},
                               {&L.o, "attn.o"},
                               {&L.gate, "mlp.gate"},
                               {&L.up, "mlp.up"},
                               {&L.down, "mlp.down"}}) {
        if (!T.gated && std::string_view(name) == "mlp.gate") continue;
        if (L.sparse && std::string_view(name).starts_with("mlp.")) continue;
        dst->w = &need(p + name + ".weight");
        dst->b = find_vector(p + name + ".bias");
      }
      layers_.push_back(L);
    }
    final_norm_ = norm_of("final_norm", true);
    head_ = n_.embedding.tied ? tok_ : &need("lm_head.weight");
    head_bias_ = find_vector("lm_head.bias");
  }

  bool fills_hidden_taps() const override { return true; }
  bool runs_token_trees() const override { return true; }

  forward_result run(std::span<const std::int32_t> ids, kv_cache& cache, const forward_options& opt) const override {
    const auto& d = n_.dims;
    const std::int64_t rows = std::int64_t(ids.size()), first = cache.size(), H = d.hidden_size;
    if (cache.width() != d.num_kv_heads * d.head_dim || cache.device_state())
      throw usage_error("forward", "kv_cache was made for another model or device");
    forward_result res;

    // Activations live in the cache's scratch buffers: nothing is allocated per token.
    const std::size_t n_act = std::size_t(rows * H);
    float* x = cache.scratch(s_x, n_act);
    float* a = cache.scratch(s_a, n_act);
    float* m = cache.scratch(s_m, n_act);
    float* attn_out = cache.scratch(s_attn, n_act);
    float* mlp_out = cache.scratch(s_mlp, n_act);
    auto snapshot = [&](const float* v) { res.hidden.push_back({{rows, H}, std::vector<float>(v, v + n_act)}); };
    // Taps copy out only the layers asked for, where the snapshots are taken.
    const auto tapped = tapped_layers(opt.taps, d.num_layers);
    const std::int64_t hooked = hooked_layer(opt.hook, d.num_layers);
    res.taps.layers.resize(tapped.size());
    auto tap = [&](std::size_t layer, const float* v) {
      for (std::size_t j = 0; j < tapped.size(); ++j)
        if (tapped[j] == layer) res.taps.layers[j] = {{rows, H}, std::vector<float>(v, v + n_act)};
    };

    // Each row's position: the next ones after the cache, or its depth in a token tree.
    const bool tree = !opt.tree.empty();
    // A small tree runs each row as it would run alone; a large one as fast as a prefill.
    const bool per_row = tree && rows < cpu::tree_gemm_min_rows;
    std::vector<std::int64_t> positions(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r)
      positions[std::size_t(r)] = tree ? std::int64_t(opt.tree[std::size_t(r)].size()) : first + r;
    const std::int64_t seq_len = *std::max_element(positions.begin(), positions.end()) + 1;

    // Embedding (Gemma's scale is rounded to the activation dtype first, as transformers does).
    const float scale = float(n_.embedding.scale);
    float* pe = T.position == position_kind::learned ? cache.scratch(s_pos, std::size_t(H)) : nullptr;
    for (std::int64_t r = 0; r < rows; ++r) {
      float* xr = x + r * H;
      tok_->decode_row(ids[std::size_t(r)], xr);
      for (std::int64_t i = 0; i < H; ++i) xr[i] = xr[i] * scale;
      if constexpr (T.position == position_kind::learned) {
        pos_->decode_row(positions[std::size_t(r)], pe);
        for (std::int64_t i = 0; i < H; ++i) xr[i] += pe[i];
      }
    }
    if (opt.hidden_states) snapshot(x);

    // One cos/sin table per kind of layer, a second only where sliding layers rotate differently.
    cpu::rope_table full_rope, sliding_rope;
    const bool two_ropes = has_sliding_rope(n_.position);
    if constexpr (T.position == position_kind::rope) {
      full_rope = cpu::make_rope_table(rope_for(n_.position, layer_attention::full), positions, seq_len);
      if (two_ropes)
        sliding_rope = cpu::make_rope_table(rope_for(n_.position, layer_attention::sliding), positions, seq_len);
    }

    const float residual_scale = float(n_.residual_scale);  // Granite's residual_multiplier; 1 elsewhere
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const auto& L = layers_[l];
      const auto& rope = two_ropes && n_.attention.layers[l] == layer_attention::sliding ? sliding_rope : full_rope;
      if constexpr (T.residual == residual_form::sequential) {
        copy_norm(x, L.attn_norm, rows, a);
        attention(L, l, a, rows, first, opt.tree, per_row, rope, cache, attn_out);
        post_norm(attn_out, L.attn_post_norm, rows);
        for (std::size_t i = 0; i < n_act; ++i) x[i] = x[i] + attn_out[i] * residual_scale;
        copy_norm(x, L.mlp_norm, rows, m);
        mlp(L, m, rows, per_row, cache, mlp_out);
        post_norm(mlp_out, L.mlp_post_norm, rows);
        for (std::size_t i = 0; i < n_act; ++i) x[i] = x[i] + mlp_out[i] * residual_scale;
      } else if constexpr (T.residual == residual_form::parallel_one_norm) {  // Phi
        copy_norm(x, L.attn_norm, rows, a);
        attention(L, l, a, rows, first, opt.tree, per_row, rope, cache, attn_out);
        mlp(L, a, rows, per_row, cache, mlp_out);
        for (std::size_t i = 0; i < n_act; ++i) x[i] = (attn_out[i] + mlp_out[i]) + x[i];
      } else {  // GPT-NeoX
        copy_norm(x, L.attn_norm, rows, a);
        copy_norm(x, L.mlp_norm, rows, m);
        attention(L, l, a, rows, first, opt.tree, per_row, rope, cache, attn_out);
        mlp(L, m, rows, per_row, cache, mlp_out);
        for (std::size_t i = 0; i < n_act; ++i) x[i] = (mlp_out[i] + attn_out[i]) + x[i];
      }
      if (std::int64_t(l) == hooked) opt.hook.fn(hooked, x, rows, H);
      if (opt.hidden_states) snapshot(x);
      if (!tapped.empty()) tap(l, x);
    }
    cache.advance(rows);

    copy_norm(x, final_norm_, rows, a);
    if (opt.hidden_states) snapshot(a);
    if (opt.taps.final_norm) res.taps.final_norm = {{rows, H}, std::vector<float>(a, a + n_act)};
    const std::int64_t out_rows = opt.all_logits ? rows : 1;
    res.logits = {{out_rows, d.vocab_size}, std::vector<float>(std::size_t(out_rows * d.vocab_size))};
    (per_row ? cpu::linear_per_row : cpu::linear)(a + (rows - out_rows) * H, out_rows, *head_, head_bias_,
                                                  res.logits.data.data(), *pool_, cpu::kernels());
    const float logit_scale = float(n_.head.logit_scale), cap = float(n_.head.final_softcap);
    for (auto& v : res.logits.data) v = math::finish_logit(v, logit_scale, cap);
    return res;
  }

 private:
  enum scratch_slot : std::size_t { s_x, s_a, s_m, s_attn, s_mlp, s_q, s_o, s_up, s_gate, s_pos, s_router, s_expert };

  struct linear_weights {
    const stored_tensor* w = nullptr;
    const float* b = nullptr;
  };
  struct norm_weights {
    bool present = false;
    math::norm_params p;
  };
  struct expert_weights {
    const stored_tensor *gate = nullptr, *up = nullptr, *down = nullptr;
  };
  struct layer_weights {
    norm_weights attn_norm, attn_post_norm, mlp_norm, mlp_post_norm, q_norm, k_norm;
    linear_weights q, k, v, o, gate, up, down;
    bool sparse = false;  // mixture of experts instead of the dense MLP
    const stored_tensor* router = nullptr;
    std::vector<expert_weights> experts;
    expert_weights shared;                       // gate null: none
    const stored_tensor* shared_gate = nullptr;  // null: none
  };

  const stored_tensor& need(const std::string& name) const {
    const auto it = w_.find(name);
    if (it == w_.end()) throw checkpoint_error(name, "weight missing for this architecture");
    return it->second;
  }
  const float* find_vector(const std::string& name) const {
    const auto it = vectors_.find(name);
    return it == vectors_.end() ? nullptr : it->second.data();
  }
  const float* need_vector(const std::string& name) const {
    need(name);
    return find_vector(name);
  }
  norm_weights norm_of(const std::string& name, bool present) const {
    norm_weights nw{present, {nullptr, nullptr, float(n_.norm.eps), n_.norm.unit_offset}};
    if (present && rule_of(T.norm).weight) nw.p.weight = need_vector(name + ".weight");
    if (present && rule_of(T.norm).bias) nw.p.bias = need_vector(name + ".bias");
    return nw;
  }

  void load_experts(const std::string& p, layer_weights& L) const {
    const auto expert = [&](const std::string& x) {
      return expert_weights{&need(x + "gate.weight"), &need(x + "up.weight"), &need(x + "down.weight")};
    };
    L.sparse = true;
    L.router = &need(p + "mlp.router.weight");
    for (std::int64_t e = 0; e < n_.moe.num_experts; ++e)
      L.experts.push_back(expert(p + "mlp.experts." + std::to_string(e) + "."));
    if (n_.moe.shared_intermediate > 0) L.shared = expert(p + "mlp.shared.");
    if (n_.moe.shared_gate) L.shared_gate = &need(p + "mlp.shared_gate.weight");
  }

  /// f(r0, r1) over row ranges covering [0, rows), on the pool when there are many rows.
  template <class F>
  void for_rows(std::int64_t rows, F&& f) const {
    constexpr std::int64_t chunk = 16;
    if (rows < 2 * chunk) return f(std::int64_t(0), rows);
    pool_->parallel_for((rows + chunk - 1) / chunk,
                        [&](std::int64_t c) { f(c * chunk, std::min(rows, (c + 1) * chunk)); });
  }

  void apply_norm(float* v, std::int64_t rows, std::int64_t width, const norm_weights& nw) const {
    for_rows(rows,
             [&](std::int64_t r0, std::int64_t r1) { cpu::normalize<T.norm>(v + r0 * width, r1 - r0, width, nw.p); });
  }
  /// per_row: each row computed as it would be alone (the rows of a token tree), else the fastest way.
  void lin(const float* x, std::int64_t rows, const linear_weights& L, float* y, bool per_row) const {
    if (per_row) cpu::linear_per_row(x, rows, *L.w, L.b, y, *pool_);
    else cpu::linear(x, rows, *L.w, L.b, y, *pool_);
  }
  /// dst = norm(src), or a plain copy where the placement has no such norm.
  void copy_norm(const float* src, const norm_weights& nw, std::int64_t rows, float* dst) const {
    std::copy(src, src + rows * n_.dims.hidden_size, dst);
    if (nw.present) apply_norm(dst, rows, n_.dims.hidden_size, nw);
  }
  void post_norm(float* v, const norm_weights& nw, std::int64_t rows) const {
    if (nw.present) apply_norm(v, rows, n_.dims.hidden_size, nw);
  }

  void attention(const layer_weights& L, std::size_t layer, const float* a, std::int64_t rows, std::int64_t first,
                 token_tree tree, bool per_row, const cpu::rope_table& rope, kv_cache& cache, float* out) const {
    const auto& d = n_.dims;
    const std::int64_t hd = d.head_dim, qw = d.num_heads * hd, kw = d.num_kv_heads * hd;
    float* q = cache.scratch(s_q, std::size_t(rows * qw));
    float* o = cache.scratch(s_o, std::size_t(rows * qw));
    float* k = cache.keys(layer) + first * kw;
    float* v = cache.values(layer) + first * kw;
    lin(a, rows, L.q, q, per_row);
    lin(a, rows, L.k, k, per_row);
    lin(a, rows, L.v, v, per_row);
    if (const float clip = float(n_.attention.qkv_clip); clip > 0) {  // OLMo: before qk-norm and RoPE
      for (float* t : {q, k, v}) {
        const std::int64_t count = rows * (t == q ? qw : kw);
        for (std::int64_t i = 0; i < count; ++i) t[i] = std::clamp(t[i], -clip, clip);
      }
    }
    if (L.q_norm.present) {
      const bool per_head = n_.norm.qk == qk_norm::per_head;
      apply_norm(q, per_head ? rows * d.num_heads : rows, per_head ? hd : qw, L.q_norm);
      apply_norm(k, per_head ? rows * d.num_kv_heads : rows, per_head ? hd : kw, L.k_norm);
    }
    if constexpr (T.position == position_kind::rope) {
      if (n_.rotates(std::int64_t(layer))) {  // SmolLM3's NoPE layers do not
        cpu::apply_rope<T.rope>(q, rows, d.num_heads, hd, rope);
        cpu::apply_rope<T.rope>(k, rows, d.num_kv_heads, hd, rope);
      }
    }
    const bool sliding = n_.attention.sliding_window > 0 && n_.attention.layers[layer] == layer_attention::sliding;
    if (tree.empty()) cpu::attend(q, rows, first, cache.keys(layer), cache.values(layer), n_, sliding, o, *pool_);
    else cpu::attend_tree(q, first, tree, cache.keys(layer), cache.values(layer), n_, sliding, o, *pool_);
    lin(o, rows, L.o, out, per_row);
  }

  /// One gated expert on one row: y = down(act(gate(x)) · up(x)). `g`, `u`: scratch of its width.
  void expert_mlp(const expert_weights& e, const float* x, float* g, float* u, float* y) const {
    cpu::linear(x, 1, *e.gate, nullptr, g, *pool_);
    cpu::linear(x, 1, *e.up, nullptr, u, *pool_);
    const std::int64_t width = e.gate->shape[0];
    for (std::int64_t i = 0; i < width; ++i) u[i] = math::activate<T.act>(g[i]) * u[i];
    cpu::linear(u, 1, *e.down, nullptr, y, *pool_);
  }

  /// Mixture of experts: per token, the router's top-k experts, weighted as the descriptor's router order says,
  /// summed in ascending expert order (as transformers' loop over experts adds them), plus the shared expert.
  void moe_mlp(const layer_weights& L, const float* a, std::int64_t rows, bool per_row, kv_cache& cache,
               float* out) const {
    const auto& m = n_.moe;
    const std::int64_t H = n_.dims.hidden_size, E = m.num_experts, K = m.top_k;
    const auto width = std::size_t(std::max(m.expert_intermediate, m.shared_intermediate));
    float* logits = cache.scratch(s_router, std::size_t(rows * E) + std::size_t(E));
    float* probs = logits + rows * E;
    float* g = cache.scratch(s_gate, width);
    float* u = cache.scratch(s_up, width);
    float* y = cache.scratch(s_expert, std::size_t(H));
    if (per_row) cpu::linear_per_row(a, rows, *L.router, nullptr, logits, *pool_);
    else cpu::linear(a, rows, *L.router, nullptr, logits, *pool_);
    std::vector<std::int64_t> order(static_cast<std::size_t>(E));
    std::vector<float> weight(static_cast<std::size_t>(E));
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* lr = logits + r * E;
      const float* xr = a + r * H;
      float* o = out + r * H;
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](auto i, auto j) { return lr[i] > lr[j]; });
      // The weights of the chosen experts, in fp32 as transformers computes them.
      const auto softmax = [&](const std::int64_t* idx, std::int64_t count) {
        float max = -INFINITY, sum = 0;
        for (std::int64_t i = 0; i < count; ++i) max = std::max(max, lr[idx[i]]);
        for (std::int64_t i = 0; i < count; ++i) sum += probs[i] = std::exp(lr[idx[i]] - max);
        for (std::int64_t i = 0; i < count; ++i) probs[i] /= sum;
      };
      std::fill(weight.begin(), weight.end(), 0.0f);
      switch (m.order) {
        case router_order::softmax_topk: {
          std::vector<std::int64_t> all(order);  // softmax over every expert, in expert order
          std::sort(all.begin(), all.end());
          softmax(all.data(), E);
          float chosen = 0;
          for (std::int64_t i = 0; i < K; ++i) chosen += probs[order[std::size_t(i)]];
          for (std::int64_t i = 0; i < K; ++i) {
            const auto e = order[std::size_t(i)];
            weight[std::size_t(e)] = m.norm_topk ? probs[e] / chosen : probs[e];
          }
          break;
        }
        case router_order::topk_softmax:
          softmax(order.data(), K);
          for (std::int64_t i = 0; i < K; ++i) weight[std::size_t(order[std::size_t(i)])] = probs[i];
          break;
      }
      std::fill(o, o + H, 0.0f);
      std::vector<std::int64_t> chosen(order.begin(), order.begin() + K);
      std::sort(chosen.begin(), chosen.end());
      for (const auto e : chosen) {
        expert_mlp(L.experts[std::size_t(e)], xr, g, u, y);
        const float w = weight[std::size_t(e)];
        for (std::int64_t i = 0; i < H; ++i) o[i] = o[i] + y[i] * w;
      }
      if (L.shared.gate) {
        expert_mlp(L.shared, xr, g, u, y);
        float s = 1.0f;
        if (L.shared_gate) {
          cpu::linear(xr, 1, *L.shared_gate, nullptr, &s, *pool_);
          s = 1.0f / (1.0f + std::exp(-s));
        }
        for (std::int64_t i = 0; i < H; ++i) o[i] = o[i] + s * y[i];
      }
    }
  }

  void mlp(const layer_weights& L, const float* a, std::int64_t rows, bool per_row, kv_cache& cache, float* out) const {
    if (L.sparse) return moe_mlp(L, a, rows, per_row, cache, out);
    const auto n = std::size_t(rows * n_.dims.intermediate_size);
    float* up = cache.scratch(s_up, n);
    const std::int64_t width = n_.dims.intermediate_size;
    lin(a, rows, L.up, up, per_row);
    if constexpr (T.gated) {
      float* gate = cache.scratch(s_gate, n);
      lin(a, rows, L.gate, gate, per_row);
      for_rows(rows, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t i = r0 * width; i < r1 * width; ++i) up[i] = math::activate<T.act>(gate[i]) * up[i];
      });
    } else {
      for_rows(rows, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t i = r0 * width; i < r1 * width; ++i) up[i] = math::activate<T.act>(up[i]);
      });
    }
    lin(up, rows, L.down, out, per_row);
  }

  stored_weights w_;
  std::unordered_map<std::string, std::vector<float>> vectors_;
  std::shared_ptr<thread_pool> pool_;
  const stored_tensor* tok_ = nullptr;
  const stored_tensor* pos_ = nullptr;
  std::vector<layer_weights> layers_;
  norm_weights final_norm_;
  const stored_tensor* head_ = nullptr;
  const float* head_bias_ = nullptr;
};

template <std::size_t... I>
std::unique_ptr<model> dispatch(std::size_t index, descriptor n, stored_weights w, std::shared_ptr<thread_pool> pool,
                                std::index_sequence<I...>) {
  using factory = std::unique_ptr<model> (*)(descriptor, stored_weights, std::shared_ptr<thread_pool>);
  static constexpr factory table[] = {
      +[](descriptor n, stored_weights w, std::shared_ptr<thread_pool> pool) -> std::unique_ptr<model> {
        return std::make_unique<universal_model<supported_blocks[I]>>(std::move(n), std::move(w), std::move(pool));
      }...};
  return table[index](std::move(n), std::move(w), std::move(pool));
}

}  // namespace cpu

/// How weights are held on the CPU: `stored` keeps each tensor in its checkpoint format (bf16, f16,
/// GGUF blocks) and computes on it directly; `fp32` widens everything once at load (the reference).
enum class weight_precision { stored, fp32 };

struct cpu_options {
  int threads = 0;  // worker threads, the caller's included; 0: every core
  weight_precision precision = weight_precision::stored;
};

/// The CPU model of instantiation `index` (every one of the list is compiled where this is).
inline std::unique_ptr<model> make_cpu_instantiation(std::size_t index, descriptor n, stored_weights w,
                                                     const cpu_options& opt) {
  return cpu::dispatch(index, std::move(n), std::move(w), shared_thread_pool(opt.threads),
                       std::make_index_sequence<supported_blocks.size()>{});
}

#if defined(NEXUS_CPU_BACKEND_COMPILED_ONCE)
// The model of every instantiation compiled once too (cpu/kernels.hpp says how).
std::unique_ptr<model> compiled_cpu_instantiation(std::size_t index, descriptor n, stored_weights w,
                                                  const cpu_options& opt);
#if defined(NEXUS_CPU_BACKEND_DEFINE)
std::unique_ptr<model> compiled_cpu_instantiation(std::size_t index, descriptor n, stored_weights w,
                                                  const cpu_options& opt) {
  return make_cpu_instantiation(index, std::move(n), std::move(w), opt);
}
#endif
#endif

/// The CPU model for a descriptor and its weights in their stored format, through the instantiation list.
inline std::unique_ptr<model> make_cpu_model(descriptor n, stored_weights w, const cpu_options& opt = {}) {
  const auto index = find_instantiation(traits_of(n));
#if defined(NEXUS_CPU_BACKEND_COMPILED_ONCE)
  return compiled_cpu_instantiation(index, std::move(n), std::move(w), opt);
#else
  return make_cpu_instantiation(index, std::move(n), std::move(w), opt);
#endif
}

/// The CPU model for a descriptor and its fp32 weights.
inline std::unique_ptr<model> make_cpu_model(descriptor n, weight_map w, const cpu_options& opt = {}) {
  stored_weights s;
  for (auto& [name, t] : w) s[name] = own_f32(std::move(t));
  return make_cpu_model(std::move(n), std::move(s), opt);
}

/// Loads a checkpoint folder or .gguf file onto the CPU: config, binding, weights, instantiation.
/// With precision `stored` the model views the mapped file and keeps it open.
inline std::unique_ptr<model> load_cpu_model(const std::filesystem::path& path, const cpu_options& opt = {}) {
  auto o = registry::open_checkpoint(path);
  if (opt.precision == weight_precision::fp32) return make_cpu_model(o.arch, unpack_weights(o.bound, o.arch), opt);
  auto file = std::make_shared<const checkpoint>(std::move(o.weights));
  return make_cpu_model(o.arch, unpack_stored(o.bound, o.arch, file), opt);
}

}  // namespace nexus
