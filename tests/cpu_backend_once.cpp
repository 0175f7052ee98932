// The CPU backend's kernels (every block format × instruction set) and models (every instantiation),
// compiled once for the test programs: the other test files are built with
// NEXUS_CPU_BACKEND_COMPILED_ONCE and call into this one (nexus/backend/cpu/kernels.hpp says how).
#define NEXUS_CPU_BACKEND_DEFINE
#include "nexus/backend/cpu/kernels.hpp"
#include "nexus/backend/cpu/model.hpp"
