// The universal model on a CUDA device: the same API as the CPU model (nexus/model/model.hpp),
// instantiated from the same traits. Host C++ in four parts: the weights (weights.hpp, uploaded
// once, then only read), the arena of each KV cache (arena.hpp), the decode graph (graph.hpp),
// and here the forward pass, which reads the model and writes only the cache's session.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nexus/arch/rope.hpp"
#include "nexus/backend/cuda/arena.hpp"
#include "nexus/backend/cuda/gemm.hpp"
#include "nexus/backend/cuda/graph.hpp"
#include "nexus/backend/cuda/launch.hpp"
#include "nexus/backend/cuda/weights.hpp"
#include "nexus/model/block_traits.hpp"
#include "nexus/model/model.hpp"

namespace nexus::cuda {

/// Tokens of one forward step: longer prompts are run in chunks of this many (model::forward).
inline constexpr int max_chunk_rows = 512;

/// Everything one KV cache owns on the device, and all that a forward pass writes: the caches and
/// arena, its stream, its cuBLASLt plans, its decode graph, its host staging.
struct session {
  session(const descriptor& n, std::int64_t capacity, precision p, const void* owner_)
      : owner(owner_), mem(n, capacity, int(std::min<std::int64_t>(capacity, max_chunk_rows)), p) {}
  const void* owner;  // the model that made it
  arena mem;
  cuda::stream stream;
  cuda::gemm gemm;
  decode_graph graph;
  int first = 0;                // staged for the copy to mem.first
  std::vector<float> inv_freq;  // staged for the copy to mem.inv_freq
};

template <block_traits T>
class universal_model final : public model {
 public:
  universal_model(descriptor n, const weight_map& w, precision p) : model(std::move(n)), w_(upload_weights(n_, w, p)) {}

  kv_cache new_cache(std::int64_t capacity) const override {
    return kv_cache(n_, capacity, std::make_shared<session>(n_, capacity, w_.p, this));
  }

 protected:
  std::int64_t max_chunk_rows() const override { return cuda::max_chunk_rows; }

  forward_result run(std::span<const std::int32_t> ids, kv_cache& cache, const forward_options& opt) const override {
    auto* s = static_cast<session*>(cache.device_state());
    if (!s || s->owner != this)
      throw usage_error("forward", "kv_cache was not made by this CUDA model (use its new_cache)");
    const int rows = int(ids.size());
    const int logit_rows = opt.all_logits ? rows : 1;
    forward_result res;
    step(*s, ids, int(cache.size()), logit_rows, opt.hidden_states ? &res : nullptr, opt.hook);
    const std::int64_t V = n_.dims.vocab_size;
    res.logits = {{logit_rows, V}, std::vector<float>(std::size_t(logit_rows * V))};
    check(cudaMemcpyAsync(res.logits.data.data(), s->mem.logits, res.logits.data.size() * 4, cudaMemcpyDeviceToHost,
                          s->stream.get()),
          "copy logits");
    s->stream.sync("forward");
    cache.advance(rows);
    return res;
  }

 private:
  /// Stages the step's inputs, then runs it (the decode step through its graph).
  void step(session& s, std::span<const std::int32_t> ids, int first, int logit_rows, forward_result* hidden,
            const residual_hook& hook) const {
    const int rows = int(ids.size());
    const cudaStream_t st = s.stream.get();
    // Inputs: ids, the first position, and the rotary frequencies for this length (dynamic NTK
    // and LongRoPE depend on it) — all read by the kernels from device memory.
    check(cudaMemcpyAsync(s.mem.ids, ids.data(), ids.size() * 4, cudaMemcpyHostToDevice, st), "ids");
    s.first = first;
    check(cudaMemcpyAsync(s.mem.first, &s.first, 4, cudaMemcpyHostToDevice, st), "first");
    if (n_.position.kind == position_kind::rope) {
      const auto full = rope_inv_freq(rope_for(n_.position, layer_attention::full), first + rows);
      s.inv_freq.assign(full.begin(), full.end());
      if (has_sliding_rope(n_.position)) {  // Gemma 3: sliding layers' own frequencies, staged behind the others
        const auto sliding = rope_inv_freq(rope_for(n_.position, layer_attention::sliding), first + rows);
        s.inv_freq.insert(s.inv_freq.end(), sliding.begin(), sliding.end());
      }
      check(cudaMemcpyAsync(s.mem.inv_freq, s.inv_freq.data(), full.size() * 4, cudaMemcpyHostToDevice, st),
            "inv_freq");
      if (s.inv_freq.size() > full.size())
        check(cudaMemcpyAsync(s.mem.inv_freq_sliding, s.inv_freq.data() + full.size(),
                              (s.inv_freq.size() - full.size()) * 4, cudaMemcpyHostToDevice, st),
              "inv_freq");
    }
    if (rows == 1 && logit_rows == 1 && !hidden && !hook)
      s.graph.run(st, [&] { launch(s, rows, logit_rows, true, nullptr, {}); });
    else launch(s, rows, logit_rows, false, hidden, hook);
  }

  /// The whole forward of `rows` tokens as a sequence of launches on the session's stream.
  void launch(session& s, int rows, int logit_rows, bool split_keys, forward_result* hidden,
              const residual_hook& hook) const {
    const auto& d = n_.dims;
    const int H = int(d.hidden_size), hd = int(d.head_dim), qw = int(d.num_heads) * hd, kw = int(d.num_kv_heads) * hd;
    const precision p = w_.p;
    const cudaStream_t st = s.stream.get();
    arena& m = s.mem;
    const norm_config cfg{T.norm, float(n_.norm.eps), n_.norm.unit_offset};
    auto snapshot = [&](const void* src, precision stored) {
      std::vector<float> host(std::size_t(rows) * std::size_t(H));
      widen_to_host(src, stored, host, s.stream);
      hidden->hidden.push_back({{rows, H}, std::move(host)});
    };
    const std::int64_t hooked = hooked_layer(hook, d.num_layers);
    embed(m.ids, rows, w_.tok.get(), w_.pos.get(), m.first, w_.embed_scale, H, p, m.x, st);
    if (hidden) snapshot(m.x, precision::fp32);
    {  // first pre-norm(s)
      residual_norm_args r;
      r.x = m.x, r.out_a = m.a, r.norm_a = w_.layers[0].attn_norm;
      if constexpr (T.residual == residual_form::parallel_two_norms) r.out_m = m.m, r.norm_m = w_.layers[0].mlp_norm;
      residual_norm(r, rows, H, cfg, p, st);
    }
    for (std::size_t l = 0; l < w_.layers.size(); ++l) {
      const auto& L = w_.layers[l];
      s.gemm.run(m.a, L.wqkv.get(), L.bqkv.as<const float>(), m.qkv, rows, qw + 2 * kw, H, p, st);
      qkv_args q;
      q.qkv = m.qkv, q.q_out = m.q, q.first = m.first, q.k_cache = m.keys(l), q.v_cache = m.values(l);
      q.heads = int(d.num_heads), q.kv_heads = int(d.num_kv_heads), q.head_dim = hd,
      q.clip = float(n_.attention.qkv_clip);
      q.qk = n_.norm.qk, q.q_norm = L.q_norm, q.k_norm = L.k_norm;
      // Gemma 3: sliding layers rotate with their own base (rope_for picks the settings of the layer's kind).
      const bool sliding_rope = has_sliding_rope(n_.position) && n_.attention.layers[l] == layer_attention::sliding;
      q.position = n_.position.kind, q.style = T.rope, q.inv_freq = sliding_rope ? m.inv_freq_sliding : m.inv_freq;
      q.rotary_dim = int(n_.position.rotary_dim);
      q.attention_factor = float(rope_for(n_.position, n_.attention.layers[l]).scaling.attention_factor);
      qkv_rope_append(q, rows, cfg, p, st);
      attention_args at;
      at.q = m.q, at.k_cache = q.k_cache, at.v_cache = q.v_cache, at.out = m.attn, at.work = m.work, at.first = m.first;
      at.heads = q.heads, at.kv_heads = q.kv_heads, at.head_dim = hd, at.scale = float(n_.attention.scale),
      at.softcap = float(n_.attention.softcap);
      at.window = n_.attention.sliding_window > 0 && n_.attention.layers[l] == layer_attention::sliding
                      ? int(n_.attention.sliding_window)
                      : 0;
      at.splits = split_keys ? m.splits : 1;
      attention(at, rows, p, st);
      s.gemm.run(m.attn, L.wo.get(), L.bo.as<const float>(), m.t1, rows, H, qw, p, st);

      const bool last = l + 1 == w_.layers.size();
      const norm_params next_attn = last ? w_.final_norm : w_.layers[l + 1].attn_norm;
      if constexpr (T.residual == residual_form::sequential) {
        residual_norm_args r1;  // x += post(attn); m = mlp_norm(x)
        r1.x = m.x, r1.branch1 = m.t1, r1.post1 = L.attn_post, r1.out_a = m.m, r1.norm_a = L.mlp_norm;
        residual_norm(r1, rows, H, cfg, p, st);
        mlp(L, m.m, s, rows);
        residual_norm_args r2;  // x += post(mlp); a = next norm(x)
        r2.x = m.x, r2.branch1 = m.t2, r2.post1 = L.mlp_post, r2.out_a = m.a, r2.norm_a = next_attn;
        residual_norm(r2, rows, H, cfg, p, st);
      } else {
        mlp(L, T.residual == residual_form::parallel_one_norm ? m.a : m.m, s, rows);
        residual_norm_args r;  // x += attn + mlp; next norms
        r.x = m.x, r.branch1 = m.t1, r.branch2 = m.t2, r.out_a = m.a, r.norm_a = next_attn;
        if (T.residual == residual_form::parallel_two_norms && !last)
          r.out_m = m.m, r.norm_m = w_.layers[l + 1].mlp_norm;
        residual_norm(r, rows, H, cfg, p, st);
      }
      if (std::int64_t(l) == hooked) {
        // The rows go to the host hook and back; the next sublayer's normalised inputs, computed from
        // the old rows by the fused kernel above, are computed again from the new ones (same kernel).
        std::vector<float> host(std::size_t(rows) * std::size_t(H));
        widen_to_host(m.x, precision::fp32, host, s.stream);
        hook.fn(hooked, host.data(), rows, H);
        check(cudaMemcpyAsync(m.x, host.data(), host.size() * 4, cudaMemcpyHostToDevice, st), "hook rows");
        residual_norm_args r;
        r.x = m.x, r.out_a = m.a, r.norm_a = next_attn;
        if (T.residual == residual_form::parallel_two_norms && !last)
          r.out_m = m.m, r.norm_m = w_.layers[l + 1].mlp_norm;
        residual_norm(r, rows, H, cfg, p, st);
        s.stream.sync("hook rows");  // `host` lives until the copy is done
      }
      if (hidden) snapshot(m.x, precision::fp32);
    }
    if (hidden) snapshot(m.a, p);  // the final norm's output, widened to fp32
    const void* last_rows =
        static_cast<const char*>(m.a) + std::size_t(rows - logit_rows) * std::size_t(H) * bytes_of(p);
    s.gemm.run(last_rows, w_.head().get(), w_.head_bias.as<const float>(), m.logits, logit_rows, int(d.vocab_size), H,
               p, st);
    finish_logits(m.logits, std::int64_t(logit_rows) * d.vocab_size, float(n_.head.logit_scale),
                  float(n_.head.final_softcap), st);
  }

  void mlp(const device_layer& L, const void* in, session& s, int rows) const {
    const int H = int(n_.dims.hidden_size), I = int(n_.dims.intermediate_size);
    const cudaStream_t st = s.stream.get();
    s.gemm.run(in, L.wgu.get(), L.bgu.as<const float>(), s.mem.gu, rows, T.gated ? 2 * I : I, H, w_.p, st);
    activate(s.mem.gu, rows, I, T.gated, T.act, s.mem.h, w_.p, st);
    s.gemm.run(s.mem.h, L.wdown.get(), L.bdown.as<const float>(), s.mem.t2, rows, H, I, w_.p, st);
  }

  /// Device values stored in `stored` precision, as fp32 on the host.
  static void widen_to_host(const void* src, precision stored, std::vector<float>& out, const cuda::stream& st) {
    if (stored == precision::fp32) {
      check(cudaMemcpyAsync(out.data(), src, out.size() * 4, cudaMemcpyDeviceToHost, st.get()), "copy");
      return st.sync("copy");
    }
    std::vector<std::uint16_t> raw(out.size());
    check(cudaMemcpyAsync(raw.data(), src, raw.size() * 2, cudaMemcpyDeviceToHost, st.get()), "copy");
    st.sync("copy");
    for (std::size_t i = 0; i < raw.size(); ++i)
      out[i] = stored == precision::bf16 ? bf16_to_float(raw[i]) : f16_to_float(raw[i]);
  }

  device_weights w_;
};

}  // namespace nexus::cuda
