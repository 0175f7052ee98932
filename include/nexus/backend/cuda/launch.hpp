// Host-side declarations of the CUDA kernels' launchers (definitions in kernels/*.cu). Plain
// functions taking runtime values; inside, one switch per axis (storage type, norm kind,
// activation, rope style, head dim) selects the compiled kernel — FlashInfer's dispatch style.
// Nothing here needs nvcc: the model runner (runner.hpp) is host C++.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "nexus/arch/enums.hpp"

namespace nexus::cuda {

/// Storage type of weights, KV cache and GEMM inputs; accumulation is always fp32.
enum class precision : std::uint8_t { fp32, bf16, fp16 };

inline std::size_t bytes_of(precision p) { return p == precision::fp32 ? 4 : 2; }

/// A norm's parameters on the device (fp32); kind `none` copies.
struct norm_params {
  const float* weight = nullptr;
  const float* bias = nullptr;
  bool present = false;
};

struct norm_config {
  norm_kind kind = norm_kind::rms;
  float eps = 1e-6f;
  bool unit_offset = false;
};

/// x[r] = tok[ids[r]] · scale (+ pos[first + r]); x fp32 [rows, hidden].
void embed(const std::int32_t* ids, int rows, const void* tok, const void* pos, const int* first, float scale,
           int hidden, precision p, float* x, cudaStream_t s);

/// One pass per row: x += post1(b1) + post2(b2) (each branch optional), then
/// out_a = norm_a(x), out_m = norm_m(x) in storage precision (each optional; absent norm: copy).
struct residual_norm_args {
  float* x = nullptr;
  const float* branch1 = nullptr;
  norm_params post1;
  const float* branch2 = nullptr;
  norm_params post2;
  void* out_a = nullptr;
  norm_params norm_a;
  void* out_m = nullptr;
  norm_params norm_m;
};
void residual_norm(const residual_norm_args& a, int rows, int hidden, const norm_config& cfg, precision p,
                   cudaStream_t s);

/// qkv fp32 [rows, qw + 2kw] (q | k | v): clip, qk-norm, RoPE; q -> q_out fp32, k, v appended
/// to the caches at positions first + r.
struct qkv_args {
  float* qkv = nullptr;
  float* q_out = nullptr;
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  const int* first = nullptr;
  int heads = 0, kv_heads = 0, head_dim = 0;
  float clip = 0;
  qk_norm qk = qk_norm::none;
  norm_params q_norm, k_norm;
  position_kind position = position_kind::none;
  rope_style style = rope_style::neox;
  const float* inv_freq = nullptr;  // rotary_dim / 2 entries
  int rotary_dim = 0;
  float attention_factor = 1;
};
void qkv_rope_append(const qkv_args& a, int rows, const norm_config& cfg, precision p, cudaStream_t s);

/// Causal attention of `rows` queries at positions first + r over the cache; out [rows, heads·hd]
/// in storage precision. Keys are split over `splits` blocks (flash-decoding) when rows is small;
/// `work` holds rows·heads·splits·(head_dim + 2) floats.
struct attention_args {
  const float* q = nullptr;
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  void* out = nullptr;
  float* work = nullptr;
  const int* first = nullptr;
  int heads = 0, kv_heads = 0, head_dim = 0;
  float scale = 1, softcap = 0;
  int window = 0;  // 0: full causal
  int splits = 1;
};
void attention(const attention_args& a, int rows, precision p, cudaStream_t s);

/// h = act(gate) · up (gated, input [rows, 2·inter]: gate | up) or act(up) (plain, [rows, inter]).
void activate(const float* in, int rows, int inter, bool gated, activation act, void* h, precision p, cudaStream_t s);

/// logits = softcap(logits · scale) in place (either step optional).
void finish_logits(float* logits, std::int64_t count, float scale, float softcap, cudaStream_t s);

/// Index of the largest logit of each row (CUB segmented arg-max); out [rows].
void argmax(const float* logits, int rows, int vocab, int* out, void* temp, std::size_t temp_bytes, cudaStream_t s);
std::size_t argmax_temp_bytes(int rows, int vocab);

}  // namespace nexus::cuda
