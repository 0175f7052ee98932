// fp32 GEMM through OpenBLAS, loaded when first needed rather than linked: the library stays
// header-only with no link-time BLAS, and we get to tell OpenBLAS which kernels to use before it
// initialises. Debian 12's OpenBLAS 0.3.21 does not know processors newer than it (Emerald Rapids
// is family 6 model 207) and falls back to its SSE3 "Prescott" kernels, 3x slower; when the user has
// not set OPENBLAS_CORETYPE, we set it from the instruction set we detect (cpu/isa.hpp).
// Without OpenBLAS every layer runs on our own dot-product kernels (correct, slower for prefill).
#pragma once

#include <dlfcn.h>

#include <cstdlib>
#include <string>

#include "nexus/backend/cpu/isa.hpp"

namespace nexus::cpu {

struct blas_library {
  // cblas_sgemm; the order and transpose arguments are CBLAS's enum values (below).
  using sgemm_fn = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                            int lda, const float* b, int ldb, float beta, float* c, int ldc);
  static constexpr int row_major = 101, no_trans = 111, trans = 112;
  sgemm_fn sgemm = nullptr;
  std::string core;  // the kernels OpenBLAS chose ("SkylakeX", "Haswell", ...); empty without OpenBLAS
};

/// OpenBLAS, single-threaded (our thread pool owns the cores; it calls sgemm from each of its tasks,
/// so the two never oversubscribe). Loaded once per process.
inline const blas_library& blas() {
  static const blas_library lib = [] {
    blas_library l;
    if (!std::getenv("OPENBLAS_CORETYPE")) {
      switch (detected_isa()) {
        case cpu_isa::avx512: ::setenv("OPENBLAS_CORETYPE", "SkylakeX", 0); break;
        case cpu_isa::avx2: ::setenv("OPENBLAS_CORETYPE", "Haswell", 0); break;
        case cpu_isa::portable: break;  // let OpenBLAS choose
      }
    }
    void* h = ::dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h) h = ::dlopen("libopenblas.so", RTLD_NOW | RTLD_LOCAL);
    if (!h) return l;
    if (auto set_threads = reinterpret_cast<void (*)(int)>(::dlsym(h, "openblas_set_num_threads"))) set_threads(1);
    if (auto core = reinterpret_cast<char* (*)()>(::dlsym(h, "openblas_get_corename"))) l.core = core();
    l.sgemm = reinterpret_cast<blas_library::sgemm_fn>(::dlsym(h, "cblas_sgemm"));
    return l;
  }();
  return lib;
}

}  // namespace nexus::cpu
