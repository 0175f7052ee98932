// GEMMs through cuBLASLt: D[R, N] (fp32) = A[R, K] · W[N, K]ᵀ (+ bias[N]), A and W in storage
// precision, fp32 accumulation (pure fp32 — no TF32 — in fp32 mode, for exact parity). Plans
// (descriptors and the chosen algorithm) are cached per shape, so a captured CUDA graph replays
// without queries. Definitions in kernels/gemm.cpp.
#pragma once

#include <cublasLt.h>

#include <map>
#include <memory>
#include <tuple>

#include "nexus/backend/cuda/launch.hpp"
#include "nexus/backend/cuda/status.hpp"

namespace nexus::cuda {

class gemm {
 public:
  explicit gemm(std::size_t workspace_bytes = 32u << 20);
  ~gemm();
  gemm(const gemm&) = delete;
  gemm& operator=(const gemm&) = delete;

  void run(const void* a, const void* w, const float* bias, float* d, int rows, int n, int k, precision p,
           cudaStream_t s);

 private:
  struct plan;
  cublasLtHandle_t handle_ = nullptr;
  std::size_t workspace_bytes_;
  device_buffer workspace_;
  std::map<std::tuple<int, int, int, int, bool>, std::unique_ptr<plan>> plans_;
};

}  // namespace nexus::cuda
