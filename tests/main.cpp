// The tests' main: Catch's, after choosing OpenBLAS's kernels as the nexus command does
// (backend/cpu/blas.hpp), so the tests run the GEMMs users run.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "nexus/backend/cpu/blas.hpp"

int main(int argc, char* argv[]) {
  nexus::cpu::choose_openblas_kernels();
  return Catch::Session().run(argc, argv);
}
