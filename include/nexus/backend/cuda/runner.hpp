// The universal model on a CUDA device: the same API as the CPU model (nexus/model/model.hpp),
// instantiated from the same traits. Host C++: it plans buffers and calls the kernel launchers
// (launch.hpp) and cuBLASLt (gemm.hpp). Weights are uploaded once through pinned staging; each
// KV cache carries one device arena planned up front; the one-token decode step is captured as a
// CUDA graph and replayed.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <memory>
#include <string>

#include "nexus/arch/rope.hpp"
#include "nexus/backend/cuda/gemm.hpp"
#include "nexus/backend/cuda/launch.hpp"
#include "nexus/model/block_traits.hpp"
#include "nexus/model/model.hpp"

namespace nexus::cuda {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw error("cuda", std::string(what) + ": " + cudaGetErrorString(e));
}

/// Device memory owned by one pointer.
struct device_buffer {
  void* ptr = nullptr;
  device_buffer() = default;
  explicit device_buffer(std::size_t bytes) { check(cudaMalloc(&ptr, std::max<std::size_t>(bytes, 1)), "cudaMalloc"); }
  device_buffer(device_buffer&& o) noexcept : ptr(std::exchange(o.ptr, nullptr)) {}
  device_buffer& operator=(device_buffer&& o) noexcept {
    std::swap(ptr, o.ptr);
    return *this;
  }
  ~device_buffer() {
    if (ptr) cudaFree(ptr);
  }
};

/// Rows of one forward chunk: longer prompts are processed in chunks of this many tokens.
inline constexpr int max_chunk_rows = 512;

template <block_traits T>
class universal_model final : public model {
 public:
  universal_model(descriptor n, const weight_map& w, precision p) : model(std::move(n)), p_(p) {
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
    upload(w);
  }
  ~universal_model() override {
    if (stream_) cudaStreamDestroy(stream_);
  }

  kv_cache new_cache(std::int64_t capacity) const override {
    return kv_cache(n_, capacity, std::make_shared<session>(*this, capacity));
  }

 protected:
  forward_result run(std::span<const std::int32_t> ids, kv_cache& cache, const forward_options& opt) const override {
    auto* s = static_cast<session*>(cache.device_state());
    if (!s || s->owner != this) throw usage_error("forward", "kv_cache was not made by this CUDA model (use its new_cache)");
    if (ids.empty()) throw usage_error("forward", "no tokens given");
    cache.check_room(std::int64_t(ids.size()));
    for (const auto id : ids)
      if (id < 0 || id >= n_.dims.vocab_size) throw usage_error("forward", "token id " + std::to_string(id) + " outside the vocabulary");
    if (n_.position.kind == position_kind::learned && cache.size() + std::int64_t(ids.size()) > n_.dims.max_positions)
      throw usage_error("forward", "positions beyond max_positions " + std::to_string(n_.dims.max_positions));
    forward_result res;
    const std::int64_t V = n_.dims.vocab_size;
    for (std::size_t at = 0; at < ids.size(); at += max_chunk_rows) {
      const int rows = int(std::min<std::size_t>(max_chunk_rows, ids.size() - at));
      const bool last_chunk = at + std::size_t(rows) == ids.size();
      const int logit_rows = opt.all_logits ? rows : (last_chunk ? 1 : 0);
      step(*s, ids.subspan(at, std::size_t(rows)), int(cache.size()), logit_rows, opt.hidden_states ? &res : nullptr);
      if (logit_rows) {
        const auto offset = res.logits.data.size();
        res.logits.data.resize(offset + std::size_t(logit_rows * V));
        check(cudaMemcpyAsync(res.logits.data.data() + offset, s->logits, std::size_t(logit_rows * V) * 4, cudaMemcpyDeviceToHost, stream_), "copy logits");
      }
      check(cudaStreamSynchronize(stream_), "forward");
      cache.advance(rows);
    }
    res.logits.shape = {std::int64_t(res.logits.data.size()) / V, V};
    return res;
  }

 private:
  struct layer_weights {
    device_buffer wqkv, bqkv, wo, bo, wgu, bgu, wdown, bdown;
    norm_params attn_norm, attn_post, mlp_norm, mlp_post, q_norm, k_norm;
  };

  /// Device state of one KV cache: the caches, the activation arena, the decode graph.
  struct session {
    const universal_model* owner;
    std::int64_t capacity;
    device_buffer k, v, arena;
    float *x, *qkv, *q, *t1, *t2, *gu, *logits, *work, *inv_freq, *inv_freq_sliding;
    void *a, *m, *attn, *h;
    int *ids, *first;
    int splits;
    cudaGraphExec_t graph = nullptr;
    int decode_calls = 0;

    session(const universal_model& o, std::int64_t capacity_) : owner(&o), capacity(capacity_) {
      const auto& d = o.n_.dims;
      const std::size_t L = std::size_t(d.num_layers), kw = std::size_t(d.num_kv_heads * d.head_dim), qw = std::size_t(d.num_heads * d.head_dim);
      const std::size_t es = bytes_of(o.p_), R = std::size_t(std::min<std::int64_t>(capacity, max_chunk_rows));
      const std::size_t H = std::size_t(d.hidden_size), I = std::size_t(d.intermediate_size), V = std::size_t(d.vocab_size);
      k = device_buffer(L * std::size_t(capacity) * kw * es);
      v = device_buffer(L * std::size_t(capacity) * kw * es);
      splits = int(std::clamp<std::int64_t>((capacity + 127) / 128, 1, 32));
      // One arena, laid out once: nothing is allocated per token.
      std::size_t bytes = 0;
      auto take = [&](std::size_t n) { const std::size_t at = bytes; bytes += (n + 255) / 256 * 256; return at; };
      const auto o_x = take(R * H * 4), o_qkv = take(R * (qw + 2 * kw) * 4), o_q = take(R * qw * 4), o_t1 = take(R * H * 4), o_t2 = take(R * H * 4),
                 o_gu = take(R * 2 * I * 4), o_logits = take(R * V * 4), o_work = take(std::size_t(d.num_heads) * std::size_t(splits) * (std::size_t(d.head_dim) + 2) * 4),
                 o_inv = take(std::size_t(std::max<std::int64_t>(o.n_.position.rotary_dim, 2)) * 4),
                 o_inv_sliding = take(std::size_t(std::max<std::int64_t>(o.n_.position.rotary_dim, 2)) * 4), o_a = take(R * H * es), o_m = take(R * H * es),
                 o_attn = take(R * qw * es), o_h = take(R * I * es), o_ids = take(R * 4), o_first = take(4);
      arena = device_buffer(bytes);
      auto at = [&](std::size_t off) { return static_cast<char*>(arena.ptr) + off; };
      x = reinterpret_cast<float*>(at(o_x)), qkv = reinterpret_cast<float*>(at(o_qkv)), q = reinterpret_cast<float*>(at(o_q));
      t1 = reinterpret_cast<float*>(at(o_t1)), t2 = reinterpret_cast<float*>(at(o_t2)), gu = reinterpret_cast<float*>(at(o_gu));
      logits = reinterpret_cast<float*>(at(o_logits)), work = reinterpret_cast<float*>(at(o_work)), inv_freq = reinterpret_cast<float*>(at(o_inv));
      inv_freq_sliding = reinterpret_cast<float*>(at(o_inv_sliding));
      a = at(o_a), m = at(o_m), attn = at(o_attn), h = at(o_h);
      ids = reinterpret_cast<int*>(at(o_ids)), first = reinterpret_cast<int*>(at(o_first));
    }
    ~session() {
      if (graph) cudaGraphExecDestroy(graph);
    }
  };

  void step(session& s, std::span<const std::int32_t> ids, int first, int logit_rows, forward_result* hidden) const {
    const int rows = int(ids.size());
    // Inputs: ids, the first position, and the rotary frequencies for this length (dynamic NTK
    // and LongRoPE depend on it) — all read by the kernels from device memory, so a captured
    // graph replays with new values.
    check(cudaMemcpyAsync(s.ids, ids.data(), ids.size() * 4, cudaMemcpyHostToDevice, stream_), "ids");
    staged_first_ = first;
    check(cudaMemcpyAsync(s.first, &staged_first_, 4, cudaMemcpyHostToDevice, stream_), "first");
    if (n_.position.kind == position_kind::rope) {
      const auto full = rope_inv_freq(rope_for(n_.position, layer_attention::full), first + rows);
      staged_inv_.assign(full.begin(), full.end());
      if (has_sliding_rope(n_.position)) {  // Gemma 3: sliding layers' own frequencies, staged behind the others
        const auto sliding = rope_inv_freq(rope_for(n_.position, layer_attention::sliding), first + rows);
        staged_inv_.insert(staged_inv_.end(), sliding.begin(), sliding.end());
      }
      check(cudaMemcpyAsync(s.inv_freq, staged_inv_.data(), full.size() * 4, cudaMemcpyHostToDevice, stream_), "inv_freq");
      if (staged_inv_.size() > full.size())
        check(cudaMemcpyAsync(s.inv_freq_sliding, staged_inv_.data() + full.size(), (staged_inv_.size() - full.size()) * 4,
                              cudaMemcpyHostToDevice, stream_), "inv_freq");
    }
    const bool decode = rows == 1 && logit_rows == 1 && !hidden;
    if (decode && s.graph) {
      check(cudaGraphLaunch(s.graph, stream_), "graph launch");
      return;
    }
    if (decode && ++s.decode_calls == 2) {  // the first decode step warmed the GEMM plans: capture
      cudaGraph_t g = nullptr;
      check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "begin capture");
      launch(s, rows, logit_rows, true, nullptr);
      check(cudaStreamEndCapture(stream_, &g), "end capture");
      check(cudaGraphInstantiate(&s.graph, g, 0), "graph instantiate");
      cudaGraphDestroy(g);
      check(cudaGraphLaunch(s.graph, stream_), "graph launch");
      return;
    }
    launch(s, rows, logit_rows, decode, hidden);
  }

  /// The whole forward of `rows` tokens as a sequence of launches on stream_.
  void launch(session& s, int rows, int logit_rows, bool split_keys, forward_result* hidden) const {
    const auto& d = n_.dims;
    const int H = int(d.hidden_size), hd = int(d.head_dim), qw = int(d.num_heads) * hd, kw = int(d.num_kv_heads) * hd;
    const std::size_t es = bytes_of(p_);
    const norm_config cfg{T.norm, float(n_.norm.eps), n_.norm.unit_offset};
    auto snapshot = [&](const float* src) {
      std::vector<float> host(std::size_t(rows) * std::size_t(H));
      check(cudaMemcpyAsync(host.data(), src, host.size() * 4, cudaMemcpyDeviceToHost, stream_), "hidden");
      check(cudaStreamSynchronize(stream_), "hidden");
      hidden->hidden.push_back({{rows, H}, std::move(host)});
    };
    embed(s.ids, rows, tok_.ptr, pos_.ptr, s.first, embed_scale_, H, p_, s.x, stream_);
    if (hidden) snapshot(s.x);
    {  // first pre-norm(s)
      residual_norm_args r;
      r.x = s.x, r.out_a = s.a, r.norm_a = layers_[0].attn_norm;
      if constexpr (T.residual == residual_form::parallel_two_norms) r.out_m = s.m, r.norm_m = layers_[0].mlp_norm;
      residual_norm(r, rows, H, cfg, p_, stream_);
    }
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const auto& L = layers_[l];
      gemm_.run(s.a, L.wqkv.ptr, static_cast<const float*>(L.bqkv.ptr), s.qkv, rows, qw + 2 * kw, H, p_, stream_);
      qkv_args q;
      q.qkv = s.qkv, q.q_out = s.q, q.first = s.first;
      q.k_cache = static_cast<char*>(s.k.ptr) + l * std::size_t(s.capacity) * std::size_t(kw) * es;
      q.v_cache = static_cast<char*>(s.v.ptr) + l * std::size_t(s.capacity) * std::size_t(kw) * es;
      q.heads = int(d.num_heads), q.kv_heads = int(d.num_kv_heads), q.head_dim = hd, q.clip = float(n_.attention.qkv_clip);
      q.qk = n_.norm.qk, q.q_norm = L.q_norm, q.k_norm = L.k_norm;
      // Gemma 3: sliding layers rotate with their own base (rope_for picks the settings of the layer's kind).
      const bool sliding_rope = has_sliding_rope(n_.position) && n_.attention.layers[l] == layer_attention::sliding;
      q.position = n_.position.kind, q.style = T.rope, q.inv_freq = sliding_rope ? s.inv_freq_sliding : s.inv_freq;
      q.rotary_dim = int(n_.position.rotary_dim);
      q.attention_factor = float(rope_for(n_.position, n_.attention.layers[l]).scaling.attention_factor);
      qkv_rope_append(q, rows, cfg, p_, stream_);
      attention_args at;
      at.q = s.q, at.k_cache = q.k_cache, at.v_cache = q.v_cache, at.out = s.attn, at.work = s.work, at.first = s.first;
      at.heads = q.heads, at.kv_heads = q.kv_heads, at.head_dim = hd, at.scale = float(n_.attention.scale), at.softcap = float(n_.attention.softcap);
      at.window = n_.attention.sliding_window > 0 && n_.attention.layers[l] == layer_attention::sliding ? int(n_.attention.sliding_window) : 0;
      at.splits = split_keys ? s.splits : 1;
      attention(at, rows, p_, stream_);
      gemm_.run(s.attn, L.wo.ptr, static_cast<const float*>(L.bo.ptr), s.t1, rows, H, qw, p_, stream_);

      const bool last = l + 1 == layers_.size();
      const norm_params next_attn = last ? final_norm_ : layers_[l + 1].attn_norm;
      if constexpr (T.residual == residual_form::sequential) {
        residual_norm_args r1;  // x += post(attn); m = mlp_norm(x)
        r1.x = s.x, r1.branch1 = s.t1, r1.post1 = L.attn_post, r1.out_a = s.m, r1.norm_a = L.mlp_norm;
        residual_norm(r1, rows, H, cfg, p_, stream_);
        mlp(L, s.m, s, rows);
        residual_norm_args r2;  // x += post(mlp); a = next norm(x)
        r2.x = s.x, r2.branch1 = s.t2, r2.post1 = L.mlp_post, r2.out_a = s.a, r2.norm_a = next_attn;
        residual_norm(r2, rows, H, cfg, p_, stream_);
      } else {
        mlp(L, T.residual == residual_form::parallel_one_norm ? s.a : s.m, s, rows);
        residual_norm_args r;  // x += attn + mlp; next norms
        r.x = s.x, r.branch1 = s.t1, r.branch2 = s.t2, r.out_a = s.a, r.norm_a = next_attn;
        if (T.residual == residual_form::parallel_two_norms && !last) r.out_m = s.m, r.norm_m = layers_[l + 1].mlp_norm;
        residual_norm(r, rows, H, cfg, p_, stream_);
      }
      if (hidden) snapshot(s.x);
    }
    if (hidden) {  // the final norm's output, widened to fp32
      std::vector<float> host(std::size_t(rows) * std::size_t(H));
      widen_to_host(s.a, host);
      hidden->hidden.push_back({{rows, H}, std::move(host)});
    }
    if (logit_rows) {
      const void* last_rows = static_cast<const char*>(s.a) + std::size_t(rows - logit_rows) * std::size_t(H) * es;
      gemm_.run(last_rows, head_->ptr, static_cast<const float*>(head_bias_.ptr), s.logits, logit_rows, int(d.vocab_size), H, p_, stream_);
      finish_logits(s.logits, std::int64_t(logit_rows) * d.vocab_size, float(n_.head.logit_scale), float(n_.head.final_softcap), stream_);
    }
  }

  void mlp(const layer_weights& L, const void* in, session& s, int rows) const {
    const int H = int(n_.dims.hidden_size), I = int(n_.dims.intermediate_size);
    gemm_.run(in, L.wgu.ptr, static_cast<const float*>(L.bgu.ptr), s.gu, rows, T.gated ? 2 * I : I, H, p_, stream_);
    activate(s.gu, rows, I, T.gated, T.act, s.h, p_, stream_);
    gemm_.run(s.h, L.wdown.ptr, static_cast<const float*>(L.bdown.ptr), s.t2, rows, H, I, p_, stream_);
  }

  void widen_to_host(const void* src, std::vector<float>& out) const {
    if (p_ == precision::fp32) {
      check(cudaMemcpyAsync(out.data(), src, out.size() * 4, cudaMemcpyDeviceToHost, stream_), "copy");
      check(cudaStreamSynchronize(stream_), "copy");
      return;
    }
    std::vector<std::uint16_t> raw(out.size());
    check(cudaMemcpyAsync(raw.data(), src, raw.size() * 2, cudaMemcpyDeviceToHost, stream_), "copy");
    check(cudaStreamSynchronize(stream_), "copy");
    for (std::size_t i = 0; i < raw.size(); ++i) out[i] = p_ == precision::bf16 ? bf16_to_float(raw[i]) : f16_to_float(raw[i]);
  }

  // ---- weights --------------------------------------------------------------------------------

  /// Uploads host fp32 values in storage precision (or fp32 when `keep_fp32`), through a pinned buffer.
  device_buffer put(const std::vector<const tensor_f32*>& parts, bool keep_fp32 = false) {
    std::size_t count = 0;
    for (const auto* t : parts) count += t->data.size();
    const precision p = keep_fp32 ? precision::fp32 : p_;
    const std::size_t bytes = count * bytes_of(p);
    if (staging_bytes_ < bytes) {
      if (staging_) cudaFreeHost(staging_);
      check(cudaMallocHost(&staging_, bytes), "pinned staging");
      staging_bytes_ = bytes;
    }
    std::size_t at = 0;
    for (const auto* t : parts)
      for (const float v : t->data) {
        if (p == precision::fp32) static_cast<float*>(staging_)[at++] = v;
        else if (p == precision::bf16) static_cast<__nv_bfloat16*>(staging_)[at++] = __float2bfloat16_rn(v);
        else static_cast<__half*>(staging_)[at++] = __float2half_rn(v);
      }
    device_buffer d(bytes);
    check(cudaMemcpyAsync(d.ptr, staging_, bytes, cudaMemcpyHostToDevice, stream_), "upload");
    check(cudaStreamSynchronize(stream_), "upload");
    return d;
  }

  void upload(const weight_map& w) {
    auto find = [&](const std::string& name) -> const tensor_f32* {
      const auto it = w.find(name);
      return it == w.end() ? nullptr : &it->second;
    };
    auto need = [&](const std::string& name) -> const tensor_f32* {
      const auto* t = find(name);
      if (!t) throw checkpoint_error(name, "weight missing for this architecture");
      return t;
    };
    std::vector<device_buffer>& keep = norm_buffers_;
    auto norm = [&](const std::string& name, bool present) {
      norm_params np;
      np.present = present;
      if (!present) return np;
      if (const auto* t = find(name + ".weight")) keep.push_back(put({t}, true)), np.weight = static_cast<const float*>(keep.back().ptr);
      if (const auto* t = find(name + ".bias")) keep.push_back(put({t}, true)), np.bias = static_cast<const float*>(keep.back().ptr);
      return np;
    };
    // Biases of fused projections: each part's bias or zeros where one part has none.
    auto fused_bias = [&](const std::vector<std::string>& names, const std::vector<std::int64_t>& rows) -> device_buffer {
      bool any = false;
      for (const auto& n : names) any = any || find(n + ".bias");
      if (!any) return {};
      std::vector<tensor_f32> zeros;
      std::vector<const tensor_f32*> parts;
      zeros.reserve(names.size());
      for (std::size_t i = 0; i < names.size(); ++i) {
        if (const auto* b = find(names[i] + ".bias")) parts.push_back(b);
        else zeros.push_back({{rows[i]}, std::vector<float>(std::size_t(rows[i]), 0.0f)}), parts.push_back(&zeros.back());
      }
      return put(parts, true);
    };
    const auto& d = n_.dims;
    tok_ = put({need("embed.tokens.weight")});
    if (n_.position.kind == position_kind::learned) pos_ = put({need("embed.positions.weight")});
    embed_scale_ = float(n_.embedding.scale);
    if (p_ == precision::bf16) embed_scale_ = __bfloat162float(__float2bfloat16_rn(embed_scale_));  // rounded like transformers'
    if (p_ == precision::fp16) embed_scale_ = __half2float(__float2half_rn(embed_scale_));            // normalizer tensor
    constexpr auto has = norms_of(T.placement, T.residual);
    const std::int64_t qw = d.num_heads * d.head_dim, kw = d.num_kv_heads * d.head_dim;
    for (std::int64_t l = 0; l < d.num_layers; ++l) {
      const std::string p = "layers." + std::to_string(l) + ".";
      layer_weights L;
      L.attn_norm = norm(p + "attn_norm", has.attn);
      L.mlp_norm = norm(p + "mlp_norm", has.mlp);
      L.attn_post = norm(p + "attn_post_norm", has.attn_post);
      L.mlp_post = norm(p + "mlp_post_norm", has.mlp_post);
      L.q_norm = norm(p + "attn.q_norm", n_.norm.qk != qk_norm::none);
      L.k_norm = norm(p + "attn.k_norm", n_.norm.qk != qk_norm::none);
      L.wqkv = put({need(p + "attn.q.weight"), need(p + "attn.k.weight"), need(p + "attn.v.weight")});
      L.bqkv = fused_bias({p + "attn.q", p + "attn.k", p + "attn.v"}, {qw, kw, kw});
      L.wo = put({need(p + "attn.o.weight")});
      L.bo = fused_bias({p + "attn.o"}, {d.hidden_size});
      if constexpr (T.gated) {
        L.wgu = put({need(p + "mlp.gate.weight"), need(p + "mlp.up.weight")});
        L.bgu = fused_bias({p + "mlp.gate", p + "mlp.up"}, {d.intermediate_size, d.intermediate_size});
      } else {
        L.wgu = put({need(p + "mlp.up.weight")});
        L.bgu = fused_bias({p + "mlp.up"}, {d.intermediate_size});
      }
      L.wdown = put({need(p + "mlp.down.weight")});
      L.bdown = fused_bias({p + "mlp.down"}, {d.hidden_size});
      layers_.push_back(std::move(L));
    }
    final_norm_ = norm("final_norm", true);
    if (n_.embedding.tied) head_ = &tok_;
    else lm_head_ = put({need("lm_head.weight")}), head_ = &lm_head_;
    head_bias_ = fused_bias({"lm_head"}, {d.vocab_size});
    if (staging_) cudaFreeHost(staging_), staging_ = nullptr, staging_bytes_ = 0;
  }

  precision p_;
  cudaStream_t stream_ = nullptr;
  mutable gemm gemm_;
  device_buffer tok_, pos_, lm_head_, head_bias_;
  const device_buffer* head_ = nullptr;
  std::vector<layer_weights> layers_;
  std::vector<device_buffer> norm_buffers_;
  norm_params final_norm_;
  float embed_scale_ = 1;
  void* staging_ = nullptr;
  std::size_t staging_bytes_ = 0;
  mutable int staged_first_ = 0;
  mutable std::vector<float> staged_inv_;
};

}  // namespace nexus::cuda
