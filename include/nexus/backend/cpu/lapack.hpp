// fp64 BLAS and LAPACK from the OpenBLAS that cpu/blas.hpp loads: dgemm and dsyrk (CBLAS, row-major)
// for statistics, dsyevd (symmetric eigendecomposition), dgesdd (SVD) and dgesv (linear systems) for
// closed-form fits.
// Loaded, not linked, like the fp32 GEMM; without OpenBLAS each call is a linalg_error
// (library_missing) naming the library, since these have no hand-written fallback.
//
// LAPACK's Fortran interface takes column-major matrices and appends the lengths of character
// arguments (gfortran's hidden size_t parameters); the wrappers below take row-major matrices.
#pragma once

#include <dlfcn.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "nexus/backend/cpu/blas.hpp"
#include "nexus/core/error.hpp"

namespace nexus {

/// A dense linear-algebra routine could not run: OpenBLAS is absent (library_missing), or LAPACK
/// reported an illegal argument or a decomposition that did not converge (failed, with its info).
class linalg_error : public error {
 public:
  enum class code { library_missing, failed };
  linalg_error(code c, std::string where, const std::string& what) : error(std::move(where), what), code_(c) {}
  code get_code() const noexcept { return code_; }

 private:
  code code_;
};

}  // namespace nexus

namespace nexus::cpu {

struct lapack_library {
  using dgemm_fn = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, double alpha, const double* a,
                            int lda, const double* b, int ldb, double beta, double* c, int ldc);
  using dsyrk_fn = void (*)(int order, int uplo, int trans, int n, int k, double alpha, const double* a, int lda,
                            double beta, double* c, int ldc);
  using dsyevd_fn = void (*)(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                             double* work, const int* lwork, int* iwork, const int* liwork, int* info, std::size_t,
                             std::size_t);
  using dgesdd_fn = void (*)(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s,
                             double* u, const int* ldu, double* vt, const int* ldvt, double* work, const int* lwork,
                             int* iwork, int* info, std::size_t);
  using dgesv_fn = void (*)(const int* n, const int* nrhs, double* a, const int* lda, int* ipiv, double* b,
                            const int* ldb, int* info);
  static constexpr int upper = 121;  // CBLAS uplo
  dgemm_fn dgemm = nullptr;
  dsyrk_fn dsyrk = nullptr;
  dsyevd_fn dsyevd = nullptr;
  dgesdd_fn dgesdd = nullptr;
  dgesv_fn dgesv = nullptr;
};

/// The fp64 routines, or linalg_error(library_missing). Loaded once per process, after blas() has
/// set OpenBLAS's core type and thread count (a second dlopen of the library returns the same handle).
inline const lapack_library& lapack() {
  static const lapack_library lib = [] {
    lapack_library l;
    if (!blas().sgemm) return l;
    void* h = ::dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h) h = ::dlopen("libopenblas.so", RTLD_NOW | RTLD_LOCAL);
    if (!h) return l;
    l.dgemm = reinterpret_cast<lapack_library::dgemm_fn>(::dlsym(h, "cblas_dgemm"));
    l.dsyrk = reinterpret_cast<lapack_library::dsyrk_fn>(::dlsym(h, "cblas_dsyrk"));
    l.dsyevd = reinterpret_cast<lapack_library::dsyevd_fn>(::dlsym(h, "dsyevd_"));
    l.dgesdd = reinterpret_cast<lapack_library::dgesdd_fn>(::dlsym(h, "dgesdd_"));
    l.dgesv = reinterpret_cast<lapack_library::dgesv_fn>(::dlsym(h, "dgesv_"));
    return l;
  }();
  if (!lib.dgemm || !lib.dsyrk || !lib.dsyevd || !lib.dgesdd || !lib.dgesv)
    throw linalg_error(linalg_error::code::library_missing, "libopenblas.so.0",
                       "OpenBLAS with LAPACK (dgemm, dsyrk, dsyevd, dgesdd, dgesv) is needed for fp64 linear algebra; "
                       "install libopenblas0 (tools/setup.sh)");
  return lib;
}

/// C[m, n] = alpha · op(A) · op(B) + beta · C, row-major; op transposes when asked.
inline void dgemm(bool trans_a, bool trans_b, int m, int n, int k, double alpha, const double* a, int lda,
                  const double* b, int ldb, double beta, double* c, int ldc) {
  const auto& l = lapack();
  l.dgemm(blas_library::row_major, trans_a ? blas_library::trans : blas_library::no_trans,
          trans_b ? blas_library::trans : blas_library::no_trans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/// C[n, n] += Aᵀ·A for A [k, n] row-major (alpha 1, beta 1), both triangles filled.
inline void add_gram(int n, int k, const double* a, double* c) {
  if (n == 0 || k == 0) return;
  lapack().dsyrk(blas_library::row_major, lapack_library::upper, blas_library::trans, n, k, 1.0, a, n, 1.0, c, n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < i; ++j) c[std::size_t(i) * std::size_t(n) + std::size_t(j)] = c[std::size_t(j) * n + i];
}

/// Eigendecomposition of a symmetric [n, n] matrix: eigenvalues ascending, and `vectors` row-major
/// [n, n] with eigenvector k in column k (A = V · diag(values) · Vᵀ).
struct symmetric_eigen {
  std::vector<double> values, vectors;
};

inline symmetric_eigen eigen_symmetric(const std::vector<double>& a, int n) {
  if (std::size_t(n) * std::size_t(n) != a.size()) throw usage_error("eigen_symmetric", "matrix is not n × n");
  const auto& l = lapack();
  symmetric_eigen r;
  r.values.assign(std::size_t(n), 0.0);
  if (n == 0) return r;
  std::vector<double> m = a;  // symmetric: row- and column-major are the same
  const char jobz = 'V', uplo = 'U';
  int info = 0, lwork = -1, liwork = -1, iw = 0;
  double wq = 0;
  l.dsyevd(&jobz, &uplo, &n, m.data(), &n, r.values.data(), &wq, &lwork, &iw, &liwork, &info, 1, 1);
  lwork = int(wq), liwork = iw;
  std::vector<double> work(std::size_t(std::max(lwork, 1)));
  std::vector<int> iwork(std::size_t(std::max(liwork, 1)));
  l.dsyevd(&jobz, &uplo, &n, m.data(), &n, r.values.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
  if (info != 0)
    throw linalg_error(linalg_error::code::failed, "dsyevd",
                       info < 0 ? "illegal argument " + std::to_string(-info)
                                : "did not converge (info " + std::to_string(info) + ")");
  // Column-major output: eigenvector k is m[k*n .. k*n+n); transpose into columns of a row-major V.
  r.vectors.resize(m.size());
  for (int k = 0; k < n; ++k)
    for (int i = 0; i < n; ++i) r.vectors[std::size_t(i) * n + k] = m[std::size_t(k) * n + i];
  return r;
}

/// x with A x = b for a row-major [n, n] A, by LU with partial pivoting (dgesv).
inline std::vector<double> solve(const std::vector<double>& a, std::vector<double> b, int n) {
  if (std::size_t(n) * std::size_t(n) != a.size() || b.size() != std::size_t(n))
    throw usage_error("solve", "matrix is not n × n or the right-hand side not n long");
  if (n == 0) return b;
  std::vector<double> at(a.size());  // column-major A
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) at[std::size_t(j) * n + i] = a[std::size_t(i) * n + j];
  std::vector<int> pivots(static_cast<std::size_t>(n));
  int info = 0;
  const int nrhs = 1;
  lapack().dgesv(&n, &nrhs, at.data(), &n, pivots.data(), b.data(), &n, &info);
  if (info != 0)
    throw linalg_error(linalg_error::code::failed, "dgesv",
                       info < 0 ? "illegal argument " + std::to_string(-info)
                                : "singular matrix (pivot " + std::to_string(info) + " is zero)");
  return b;
}

/// Thin SVD of a row-major [m, n] matrix: A = U · diag(s) · Vt with U [m, r], Vt [r, n], r = min(m, n),
/// singular values descending.
struct svd_result {
  std::vector<double> u, s, vt;
  int rank_dim = 0;
};

inline svd_result svd(const std::vector<double>& a, int m, int n) {
  if (std::size_t(m) * std::size_t(n) != a.size()) throw usage_error("svd", "matrix is not m × n");
  const auto& l = lapack();
  svd_result r;
  const int k = std::min(m, n);
  r.rank_dim = k;
  r.s.assign(std::size_t(k), 0.0);
  r.u.assign(std::size_t(m) * k, 0.0);
  r.vt.assign(std::size_t(k) * n, 0.0);
  if (k == 0) return r;
  // The row-major A is the column-major Aᵀ [n, m]; Aᵀ = U'·S·VT' gives A = VT'ᵀ·S·U'ᵀ, and the
  // column-major VT' [k, m] is the row-major U [m, k] (likewise U' [n, k] is Vt [k, n]).
  std::vector<double> at = a;
  const char jobz = 'S';
  int info = 0, lwork = -1;
  std::vector<int> iwork(std::size_t(8) * k);
  double wq = 0;
  l.dgesdd(&jobz, &n, &m, at.data(), &n, r.s.data(), r.vt.data(), &n, r.u.data(), &k, &wq, &lwork, iwork.data(), &info,
           1);
  lwork = int(wq);
  std::vector<double> work(std::size_t(std::max(lwork, 1)));
  l.dgesdd(&jobz, &n, &m, at.data(), &n, r.s.data(), r.vt.data(), &n, r.u.data(), &k, work.data(), &lwork, iwork.data(),
           &info, 1);
  if (info != 0)
    throw linalg_error(linalg_error::code::failed, "dgesdd",
                       info < 0 ? "illegal argument " + std::to_string(-info)
                                : "did not converge (info " + std::to_string(info) + ")");
  return r;
}

}  // namespace nexus::cpu
