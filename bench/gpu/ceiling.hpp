// What the GPU benchmarks share (host C++): the device's identity for each JSON record, event
// timing, the no-device exit, and the ceilings measured in the same run — HBM bandwidth by a copy
// kernel (bytes read + bytes written per second, best configuration), and the dense bf16 peak
// from the data sheet of the device found (not measured; see gpu_bench's gemm for a measured one).
#pragma once

#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "device_kernels.hpp"
#include "nexus/backend/cuda/status.hpp"

namespace nexus::bench {

/// Exit status of a benchmark run without a CUDA device (CTest's "skipped", like nexus_cuda_tests).
inline constexpr int no_device_status = 77;

inline std::string command_line(int argc, char** argv) {
  std::string c;
  for (int i = 0; i < argc; ++i) {
    if (i) c += ' ';
    c += argv[i];
  }
  return c;
}

inline void write_json(const nlohmann::ordered_json& j, const std::string& path) {
  fmt::print("{}\n", j.dump(2));
  if (!path.empty()) std::ofstream(path) << j.dump(2) << "\n";
}

/// Without a device: says so on stderr, writes {"status": "no-device", ...} to `out`, returns 77.
inline int no_device(const char* program, const std::string& command, const std::string& out) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  const std::string why = e != cudaSuccess ? cudaGetErrorString(e) : "0 devices";
  std::fprintf(stderr, "%s: no CUDA device (%s)\n", program, why.c_str());
  if (!out.empty())
    std::ofstream(out) << nlohmann::ordered_json{{"status", "no-device"}, {"reason", why}, {"command", command}}.dump(2)
                       << "\n";
  return no_device_status;
}

inline bool have_device() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

/// Name, driver, runtime, SMs, memory, and the HBM peak from the memory clock and bus width.
inline nlohmann::ordered_json device_info() {
  cudaDeviceProp prop{};
  cuda::check(cudaGetDeviceProperties(&prop, 0), "device properties");
  int mem_clock_khz = 0, bus_bits = 0, driver = 0, runtime = 0;
  cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, 0);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0);
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  return {{"device", prop.name},
          {"driver_api", driver},
          {"runtime", runtime},
          {"compute_capability", fmt::format("{}.{}", prop.major, prop.minor)},
          {"sms", prop.multiProcessorCount},
          {"memory_bytes", prop.totalGlobalMem},
          {"l2_bytes", prop.l2CacheSize},
          {"spec_hbm_gb_per_s", 2.0 * mem_clock_khz * 1e3 * bus_bits / 8 / 1e9}};  // DDR: two transfers a clock
}

/// Dense bf16 tensor-core peak (no sparsity) from the data sheet of the device named, in TFLOP/s; 0 if unknown.
inline double spec_bf16_tflops(const std::string& name) {
  const auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  if (has("H200")) return 989.4;
  if (has("H100") && has("PCIe")) return 756.0;
  if (has("H100") && has("NVL")) return 835.0;
  if (has("H100")) return 989.4;  // SXM5 (the "H100 80GB HBM3")
  if (has("A100")) return 312.0;
  return 0.0;
}

/// Milliseconds of `f` on stream s: best of `reps` timed runs after one warm-up, each run `inner` calls.
template <class F>
double best_ms(cudaStream_t s, int reps, int inner, F&& f) {
  cudaEvent_t a = nullptr, b = nullptr;
  cuda::check(cudaEventCreate(&a), "event"), cuda::check(cudaEventCreate(&b), "event");
  f();
  cuda::check(cudaStreamSynchronize(s), "warm-up");
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    cuda::check(cudaEventRecord(a, s), "event");
    for (int i = 0; i < inner; ++i) f();
    cuda::check(cudaEventRecord(b, s), "event");
    cuda::check(cudaEventSynchronize(b), "event");
    float ms = 0;
    cuda::check(cudaEventElapsedTime(&ms, a, b), "elapsed");
    best = std::min(best, double(ms) / inner);
  }
  cudaEventDestroy(a), cudaEventDestroy(b);
  return best;
}

/// The usable HBM bandwidth: a 16-byte copy kernel over `bytes` (far above L2) in several launch shapes,
/// and cudaMemcpy device to device (recorded beside it), in GB/s counting bytes read plus bytes written; the
/// kernel's best shape is the ceiling.
inline nlohmann::ordered_json measure_copy_bandwidth(std::size_t bytes = std::size_t(1) << 30) {
  cudaDeviceProp prop{};
  cuda::check(cudaGetDeviceProperties(&prop, 0), "device properties");
  cuda::device_buffer src(bytes), dst(bytes);
  cuda::stream st;
  cuda::check(cudaMemsetAsync(src.get(), 1, bytes, st.get()), "memset");
  nlohmann::ordered_json shapes = nlohmann::ordered_json::array();
  double best = 0;
  for (const int per_sm : {2, 4, 8, 16})
    for (const int threads : {256, 512, 1024}) {
      const int blocks = per_sm * prop.multiProcessorCount;
      const double ms = best_ms(st.get(), 5, 3, [&] {
        cuda::check(launch_copy(src.get(), dst.get(), bytes, blocks, threads, st.get()), "copy kernel");
      });
      const double gbps = 2.0 * double(bytes) / (ms * 1e-3) / 1e9;
      shapes.push_back({{"blocks", blocks}, {"threads", threads}, {"ms", ms}, {"gb_per_s", gbps}});
      best = std::max(best, gbps);
    }
  const double memcpy_ms = best_ms(st.get(), 5, 3, [&] {
    cuda::check(cudaMemcpyAsync(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice, st.get()), "memcpy");
  });
  const double memcpy_gbps = 2.0 * double(bytes) / (memcpy_ms * 1e-3) / 1e9;
  return {{"bytes_per_copy", bytes},
          {"copy_kernel_gb_per_s", best},
          {"memcpy_d2d_gb_per_s", memcpy_gbps},
          {"ceiling_gb_per_s", best},  // the copy kernel's, as the issue asks
          {"copy_kernel_shapes", shapes}};
}

}  // namespace nexus::bench
