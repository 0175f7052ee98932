// The option groups several commands share: where a model runs (--device, --precision, --threads),
// and the models those options load.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "nexus/backend/cpu/model.hpp"
#include "nexus/core/error.hpp"
#include "nexus/io/model_cache.hpp"

#if defined(NEXUS_WITH_CUDA)
#include "nexus/backend/cuda/model.hpp"
#endif

namespace nexus::cli {

/// Where a command runs: `--device cpu --threads N --precision stored|fp32` or `--device cuda --precision ...`.
/// An empty precision is the device's default: stored on the CPU, fp32 on CUDA.
struct device_args {
  std::string device = "cpu", precision;
  int threads = 0;  // CPU worker threads; 0: every core
};

/// A model argument: a path, a Hugging Face repository id or cache folder, or a file in the Nexus
/// model cache (io/model_cache.hpp), replaced by the path it names.
inline const CLI::Validator model_name(
    [](std::string& name) {
      try {
        name = resolve_model(name).string();
        return std::string();
      } catch (const io_error& e) {
        return std::string(e.what());
      }
    },
    "MODEL", "model");

/// `--threads`: the CPU backend's worker threads (run, parity, generate, demo).
inline void add_worker_threads_option(CLI::App& cmd, int& threads) {
  cmd.add_option("--threads", threads, "CPU worker threads (0: every core)")->check(CLI::Range(0, 1 << 16));
}

/// `--device`, `--precision` and `--threads` (run, parity, generate).
inline void add_device_options(CLI::App& cmd, device_args& d) {
  cmd.add_option("--device", d.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd.add_option("--precision", d.precision,
                 "weights: on the cpu stored (default: as in the checkpoint) or fp32 (the exact reference); "
                 "on cuda fp32 (default), bf16 or fp16")
      ->check(CLI::IsMember({"stored", "fp32", "bf16", "fp16"}));
  add_worker_threads_option(cmd, d.threads);
}

/// `--threads`: CPU threads of the commands that run on the CPU only (extract, train-bridge, score).
inline void add_threads_option(CLI::App& cmd, int& threads) {
  cmd.add_option("--threads", threads, "CPU threads (0: every core)")->check(CLI::Range(0, 1024));
}

/// The CPU options of `--threads` and `--precision` (stored: weights in their checkpoint format; fp32: widened).
inline cpu_options cpu_options_of(const device_args& d) {
  cpu_options o{.threads = d.threads};
  if (d.threads < 0) throw usage_error("--threads", "must be 0 (every core) or a positive count");
  if (d.precision.empty() || d.precision == "stored") o.precision = weight_precision::stored;
  else if (d.precision == "fp32") o.precision = weight_precision::fp32;
  else
    throw usage_error("--precision", "the CPU backend holds weights as 'stored' or 'fp32', not '" + d.precision + "'");
  return o;
}

/// The model at `dir` (checkpoint folder or .gguf file) on the device of `d`.
inline std::unique_ptr<model> load_model(const std::string& dir, const device_args& d) {
  if (d.device == "cpu") return load_cpu_model(dir, cpu_options_of(d));
  if (d.threads != 0) throw usage_error("--threads", "sets CPU worker threads; it does not apply to --device cuda");
#if defined(NEXUS_WITH_CUDA)
  if (d.precision != "" && d.precision != "fp32" && d.precision != "bf16" && d.precision != "fp16")
    throw usage_error("--precision", "the CUDA backend runs fp32, bf16 or fp16, not '" + d.precision + "'");
  const auto p = d.precision == "bf16"   ? cuda::precision::bf16
                 : d.precision == "fp16" ? cuda::precision::fp16
                                         : cuda::precision::fp32;
  return cuda::load_model(dir, p);
#else
  throw usage_error("--device", "this build has no CUDA backend (configure with -DNEXUS_ENABLE_CUDA=ON)");
#endif
}

}  // namespace nexus::cli
