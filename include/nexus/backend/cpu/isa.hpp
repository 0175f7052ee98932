// Which SIMD instruction set the CPU kernels use, chosen once at run time from what the processor
// reports. NEXUS_CPU_ISA=portable|avx2|avx512 caps the choice (tests and benchmarks compare paths).
#pragma once

#include <cstdlib>
#include <string>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

#include "nexus/core/enum_table.hpp"
#include "nexus/reflect/reflect.hpp"

namespace nexus {

// portable: plain C++ (any processor); avx2: AVX2 + FMA + F16C; avx512: AVX-512 F/BW/VL/DQ on top.
#define NEXUS_CPU_ISAS(X) X(portable) X(avx2) X(avx512)
enum class cpu_isa : std::uint8_t { NEXUS_CPU_ISAS(NEXUS_ENUM_VALUE_) };
NEXUS_ENUM_TABLE(cpu_isa, NEXUS_CPU_ISAS);

namespace cpu {

/// The best instruction set this processor runs.
inline cpu_isa detected_isa() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);  // clang 14 has no "f16c" name
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
  if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return cpu_isa::avx512;
  if (avx2) return cpu_isa::avx2;
#endif
  return cpu_isa::portable;
}

/// True when kernels for `isa` can run here.
inline bool isa_available(cpu_isa isa) { return static_cast<int>(isa) <= static_cast<int>(detected_isa()); }

/// The instruction set the kernels use: the detected one, capped by NEXUS_CPU_ISA.
inline cpu_isa active_isa() {
  static const cpu_isa chosen = [] {
    const cpu_isa best = detected_isa();
    const char* cap = std::getenv("NEXUS_CPU_ISA");
    if (!cap || !*cap) return best;
    const auto wanted = reflect::parse_enum<cpu_isa>(cap);
    if (!wanted)
      throw usage_error("NEXUS_CPU_ISA", "'" + std::string(cap) + "' is not one of " + reflect::enum_list<cpu_isa>());
    return *wanted < best ? *wanted : best;
  }();
  return chosen;
}

}  // namespace cpu
}  // namespace nexus
