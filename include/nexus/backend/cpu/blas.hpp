// fp32 GEMM through OpenBLAS, loaded when first needed rather than linked: the library stays
// header-only with no link-time BLAS, and we get to tell OpenBLAS which kernels to use before it
// initialises. Debian 12's OpenBLAS 0.3.21 does not know processors newer than it (Emerald Rapids
// is family 6 model 207) and falls back to its SSE3 "Prescott" kernels, 3x slower. A header must not
// change the environment of the process that includes it, so choosing OpenBLAS's kernels from the
// instruction set we detect is an explicit call, choose_openblas_kernels(), made by the nexus CLI
// (and by any program that wants it) before the first model runs.
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

/// Sets OPENBLAS_CORETYPE from the instruction set this processor runs (cpu/isa.hpp), unless it is
/// set already: OpenBLAS reads it once, when it is loaded, so call this before anything runs a
/// model. It changes the process environment (setenv), hence an explicit call, not a side effect.
inline void choose_openblas_kernels() {
  if (std::getenv("OPENBLAS_CORETYPE")) return;
  switch (detected_isa()) {
    case cpu_isa::avx512: ::setenv("OPENBLAS_CORETYPE", "SkylakeX", 0); break;
    case cpu_isa::avx2: ::setenv("OPENBLAS_CORETYPE", "Haswell", 0); break;
    case cpu_isa::portable: break;  // let OpenBLAS choose
  }
}

/// OpenBLAS, single-threaded (our thread pool owns the cores; it calls sgemm from each of its tasks,
/// so the two never oversubscribe). Loaded once per process.
inline const blas_library& blas() {
  static const blas_library lib = [] {
    blas_library l;
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
