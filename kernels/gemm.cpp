// cuBLASLt plans for the projections (see include/nexus/backend/cuda/gemm.hpp).
#include "nexus/backend/cuda/gemm.hpp"

#include <cuda_runtime_api.h>

#include <memory>
#include <string>
#include <type_traits>

namespace nexus::cuda {

namespace {
cudaDataType_t data_type(precision p) {
  switch (p) {
    case precision::fp32: return CUDA_R_32F;
    case precision::bf16: return CUDA_R_16BF;
    case precision::fp16: return CUDA_R_16F;
  }
  throw usage_error("gemm", "precision " + std::to_string(int(p)) + " is not a declared value");
}
}  // namespace

struct gemm::plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~plan() {
    if (op) cublasLtMatmulDescDestroy(op);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (d) cublasLtMatrixLayoutDestroy(d);
  }
};

gemm::gemm(std::size_t workspace_bytes) : workspace_bytes_(workspace_bytes), workspace_(workspace_bytes) {
  check(cublasLtCreate(&handle_), "create");
}

gemm::~gemm() {
  plans_.clear();  // plan descriptors before the handle
  if (handle_) cublasLtDestroy(handle_);
}

void gemm::run(const void* a, const void* w, const float* bias, float* d, int rows, int n, int k, precision p,
               cudaStream_t s) {
  // Row-major D[R,N] = A[R,K]·W[N,K]ᵀ is column-major Dᵀ[N,R] = op(W)·Aᵀ with W stored [K,N], op = T.
  const auto key = std::tuple{rows, n, k, int(p), bias != nullptr};
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    auto pl = std::make_unique<plan>();
    const auto t = data_type(p);
    check(cublasLtMatmulDescCreate(&pl->op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul desc");
    const cublasOperation_t trans = CUBLAS_OP_T, none = CUBLAS_OP_N;
    check(cublasLtMatmulDescSetAttribute(pl->op, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof trans), "transa");
    check(cublasLtMatmulDescSetAttribute(pl->op, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof none), "transb");
    if (bias) {
      const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
      const cudaDataType_t bias_type = CUDA_R_32F;
      check(cublasLtMatmulDescSetAttribute(pl->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi), "epilogue");
      check(cublasLtMatmulDescSetAttribute(pl->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type),
            "bias type");
    }
    check(cublasLtMatrixLayoutCreate(&pl->a, t, k, n, k), "layout W");
    check(cublasLtMatrixLayoutCreate(&pl->b, t, k, rows, k), "layout A");
    check(cublasLtMatrixLayoutCreate(&pl->d, CUDA_R_32F, n, rows, n), "layout D");
    cublasLtMatmulPreference_t pref = nullptr;
    check(cublasLtMatmulPreferenceCreate(&pref), "preference");
    const std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>, decltype(&cublasLtMatmulPreferenceDestroy)>
        owned(pref, &cublasLtMatmulPreferenceDestroy);
    check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_,
                                               sizeof workspace_bytes_),
          "workspace");
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const auto st =
        cublasLtMatmulAlgoGetHeuristic(handle_, pl->op, pl->a, pl->b, pl->d, pl->d, pref, 1, &result, &found);
    check(st, "algorithm heuristic");
    if (found == 0)
      throw unsupported_error(
          "cuBLASLt", "no algorithm for " + std::to_string(rows) + "x" + std::to_string(n) + "x" + std::to_string(k));
    pl->algo = result.algo;
    it = plans_.emplace(key, std::move(pl)).first;
  }
  plan& pl = *it->second;
  if (bias)
    check(cublasLtMatmulDescSetAttribute(pl.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias), "bias pointer");
  const float alpha = 1.0f, beta = 0.0f;
  check(cublasLtMatmul(handle_, pl.op, &alpha, w, pl.a, a, pl.b, &beta, d, pl.d, d, pl.d, &pl.algo, workspace_.get(),
                       workspace_bytes_, s),
        "matmul");
}

}  // namespace nexus::cuda
