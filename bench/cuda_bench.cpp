// Decode-step and prefill timing of the CUDA backend on random-weight models shaped like real
// checkpoints, with the achieved HBM bandwidth of the decode step (weights + KV bytes per step)
// as a fraction of the device's peak. Writes JSON (device, driver, command) to --out.
//   cuda_bench --shape llama-3.2-1b|qwen2.5-0.5b [--precision bf16] [--prompt 512] [--decode 128] [--out FILE]
#include <CLI/CLI.hpp>
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <random>

#include "nexus/backend/cuda/model.hpp"
#include "nexus/registry/registry.hpp"

namespace {

nlohmann::json shape_config(const std::string& shape) {
  if (shape == "llama-3.2-1b")
    return {{"model_type", "llama"},
            {"vocab_size", 128256},
            {"hidden_size", 2048},
            {"intermediate_size", 8192},
            {"num_hidden_layers", 16},
            {"num_attention_heads", 32},
            {"num_key_value_heads", 8},
            {"head_dim", 64},
            {"rms_norm_eps", 1e-5},
            {"rope_theta", 500000.0},
            {"max_position_embeddings", 131072},
            {"tie_word_embeddings", true},
            {"rope_scaling",
             {{"rope_type", "llama3"},
              {"factor", 32.0},
              {"low_freq_factor", 1.0},
              {"high_freq_factor", 4.0},
              {"original_max_position_embeddings", 8192}}}};
  if (shape == "qwen2.5-0.5b")
    return {{"model_type", "qwen2"},      {"vocab_size", 151936},
            {"hidden_size", 896},         {"intermediate_size", 4864},
            {"num_hidden_layers", 24},    {"num_attention_heads", 14},
            {"num_key_value_heads", 2},   {"rms_norm_eps", 1e-6},
            {"rope_theta", 1000000.0},    {"max_position_embeddings", 32768},
            {"tie_word_embeddings", true}};
  throw nexus::usage_error("--shape", "unknown shape '" + shape + "' (llama-3.2-1b, qwen2.5-0.5b)");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CUDA backend timing on random-weight models"};
  std::string shape = "llama-3.2-1b", precision = "bf16", out_path;
  int prompt = 512, decode = 128;
  app.add_option("--shape", shape);
  app.add_option("--precision", precision)->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  app.add_option("--prompt", prompt)->check(CLI::Range(1, 32768));
  app.add_option("--decode", decode)->check(CLI::Range(1, 32768));
  app.add_option("--out", out_path);
  CLI11_PARSE(app, argc, argv);
  if (nexus::cuda::device_count() == 0) {
    fmt::print(stderr, "cuda_bench: no CUDA device\n");
    return 1;
  }
  const auto n = nexus::registry::describe(shape_config(shape), shape);
  nexus::weight_map w;
  std::mt19937 rng(0);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::int64_t params = 0;
  for (const auto& [name, s] : nexus::canonical_tensors(n)) {
    auto& t = w[name];
    t.shape = s;
    std::int64_t count = 1;
    for (auto d : s) count *= d;
    params += count;
    t.data.resize(std::size_t(count));
    const bool norm = name.find("norm") != std::string::npos;
    for (auto& v : t.data) v = norm ? 1.0f : normal(rng);
  }
  const auto p = precision == "bf16"   ? nexus::cuda::precision::bf16
                 : precision == "fp16" ? nexus::cuda::precision::fp16
                                       : nexus::cuda::precision::fp32;
  const auto m = nexus::cuda::make_model(n, w, p);
  w.clear();
  auto cache = m->new_cache(prompt + decode);
  std::vector<std::int32_t> ids(static_cast<std::size_t>(prompt));
  for (auto& id : ids) id = std::int32_t(rng() % std::uint32_t(n.dims.vocab_size));
  using clock = std::chrono::steady_clock;
  double prefill_s = 1e30;
  for (int rep = 0; rep < 3; ++rep) {  // best of three
    cache.clear();
    const auto t0 = clock::now();
    m->forward(ids, cache, {.all_logits = false});
    prefill_s = std::min(prefill_s, std::chrono::duration<double>(clock::now() - t0).count());
  }
  std::int32_t next = 1;
  const auto t0 = clock::now();
  for (int i = 0; i < decode; ++i) m->forward(std::span(&next, 1), cache, {.all_logits = false});
  const double decode_s = std::chrono::duration<double>(clock::now() - t0).count() / decode;

  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  int mem_clock_khz = 0, bus_bits = 0, driver = 0;
  cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, 0);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0);
  cudaDriverGetVersion(&driver);
  const double peak = 2.0 * mem_clock_khz * 1e3 * bus_bits / 8;  // DDR: two transfers per clock
  const double elem = p == nexus::cuda::precision::fp32 ? 4 : 2;
  const std::int64_t avg_keys = prompt + decode / 2;
  const double bytes =
      double(params) * elem + double(n.dims.num_layers) * 2 * avg_keys * n.dims.num_kv_heads * n.dims.head_dim * elem;
  nlohmann::ordered_json j{{"device", prop.name},
                           {"driver", driver},
                           {"shape", shape},
                           {"precision", precision},
                           {"parameters", params},
                           {"prompt_tokens", prompt},
                           {"prefill_tokens_per_s", prompt / prefill_s},
                           {"decode_ms_per_token", decode_s * 1e3},
                           {"decode_tokens_per_s", 1.0 / decode_s},
                           {"decode_hbm_gb_per_s", bytes / decode_s / 1e9},
                           {"peak_hbm_gb_per_s", peak / 1e9},
                           {"decode_fraction_of_hbm_roofline", bytes / decode_s / peak}};
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  j["command"] = command;
  fmt::print("{}\n", j.dump(2));
  if (!out_path.empty()) std::ofstream(out_path) << j.dump(2) << "\n";
  return 0;
}
