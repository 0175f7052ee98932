// Decode-step and prefill timing of the CUDA backend on random-weight models shaped like real
// checkpoints (or a real checkpoint, --model), with the achieved HBM bandwidth of the decode step
// (weights + KV bytes per step) as a fraction of the bandwidth a copy kernel reaches on the same
// device in the same run (bench/gpu/ceiling.hpp) and of the data sheet's peak. The decode step runs
// as the backend's CUDA graph (one token, batch 1); its two warm-up steps (plain, capture) are not
// timed. Writes JSON (device, driver, command) to stdout and --out; exits 77 without a device.
//   cuda_bench --shape llama-3.2-1b|qwen2.5-0.5b [--precision bf16] [--prompt 512] [--decode 128] [--out FILE]
//   cuda_bench --model DIR_OR_GGUF ...            a real checkpoint instead of random weights
#include <CLI/CLI.hpp>
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <random>

#include "gpu/ceiling.hpp"
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
  std::string shape = "llama-3.2-1b", precision = "bf16", out_path, model_path;
  int prompt = 512, decode = 128;
  app.add_option("--shape", shape, "llama-3.2-1b or qwen2.5-0.5b (random weights)");
  app.add_option("--model", model_path, "a checkpoint folder or .gguf file instead of --shape");
  app.add_option("--precision", precision)->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  app.add_option("--prompt", prompt)->check(CLI::Range(1, 32768));
  app.add_option("--decode", decode)->check(CLI::Range(1, 32768));
  app.add_option("--out", out_path);
  CLI11_PARSE(app, argc, argv);
  const auto command = nexus::bench::command_line(argc, argv);
  if (model_path.empty()) try {
      (void)shape_config(shape);  // an unknown shape is a usage error, device or not
    } catch (const std::exception& e) {
      fmt::print(stderr, "cuda_bench: {}\n", e.what());
      return 2;
    }
  if (!nexus::bench::have_device()) return nexus::bench::no_device("cuda_bench", command, out_path);
  const auto p = precision == "bf16"   ? nexus::cuda::precision::bf16
                 : precision == "fp16" ? nexus::cuda::precision::fp16
                                       : nexus::cuda::precision::fp32;
  using clock = std::chrono::steady_clock;
  std::int64_t params = 0;
  std::unique_ptr<nexus::model> m;
  std::mt19937 rng(0);
  const auto load_start = clock::now();
  if (!model_path.empty()) {
    m = nexus::cuda::load_model(model_path, p);
  } else {
    const auto n = nexus::registry::describe(shape_config(shape), shape);
    nexus::weight_map w;
    // Uniform with standard deviation 0.02 from splitmix64 (a normal draw per weight took ~15 s for the 1B shape:
    // device time on a lent GPU); what the timing sees is the same either way.
    std::uint64_t state = 0;
    const auto uniform = [&state] {
      std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      return float(double((z ^ (z >> 31)) >> 11) * 0x1.0p-53 * 2.0 - 1.0) * 0.0346410f;  // 0.02 · √3
    };
    for (const auto& [name, s] : nexus::canonical_tensors(n)) {
      auto& t = w[name];
      t.shape = s;
      std::int64_t count = 1;
      for (auto d : s) count *= d;
      params += count;
      t.data.resize(std::size_t(count));
      const bool norm = name.find("norm") != std::string::npos;
      for (auto& v : t.data) v = norm ? 1.0f : uniform();
    }
    m = nexus::cuda::make_model(n, w, p);
  }
  const double load_s = std::chrono::duration<double>(clock::now() - load_start).count();
  const auto& n = m->arch();
  auto cache = m->new_cache(prompt + decode + 2);
  std::vector<std::int32_t> ids(static_cast<std::size_t>(prompt));
  for (auto& id : ids) id = std::int32_t(rng() % std::uint32_t(n.dims.vocab_size));
  double prefill_s = 1e30;
  for (int rep = 0; rep < 3; ++rep) {  // best of three
    cache.clear();
    const auto t0 = clock::now();
    m->forward(ids, cache, {.all_logits = false});
    prefill_s = std::min(prefill_s, std::chrono::duration<double>(clock::now() - t0).count());
  }
  std::int32_t next = 1;
  for (int i = 0; i < 2; ++i) m->forward(std::span(&next, 1), cache, {.all_logits = false});  // plain, then captured
  const auto t0 = clock::now();
  for (int i = 0; i < decode; ++i) m->forward(std::span(&next, 1), cache, {.all_logits = false});
  const double decode_s = std::chrono::duration<double>(clock::now() - t0).count() / decode;

  auto j = nexus::bench::device_info();
  j["status"] = "ok";
  j["command"] = command;
  const auto ceiling = nexus::bench::measure_copy_bandwidth();
  const double ceiling_gbps = ceiling["ceiling_gb_per_s"].get<double>(), peak = j["spec_hbm_gb_per_s"].get<double>();
  j["shape"] = model_path.empty() ? shape : model_path;
  j["precision"] = precision;
  j["load_s"] = load_s;
  j["prompt_tokens"] = prompt;
  j["prefill_tokens_per_s"] = prompt / prefill_s;
  j["decode_tokens"] = decode;
  j["decode_ms_per_token"] = decode_s * 1e3;
  j["decode_tokens_per_s"] = 1.0 / decode_s;
  j["bandwidth"] = ceiling;
  if (params > 0) {  // random weights: every parameter is read once per step (the tied head reads the embedding)
    const double elem = p == nexus::cuda::precision::fp32 ? 4 : 2;
    const std::int64_t avg_keys = prompt + 2 + decode / 2;
    const double bytes =
        double(params) * elem + double(n.dims.num_layers) * 2 * avg_keys * n.dims.num_kv_heads * n.dims.head_dim * elem;
    j["parameters"] = params;
    j["decode_bytes_per_step"] = bytes;
    j["decode_hbm_gb_per_s"] = bytes / decode_s / 1e9;
    j["decode_fraction_of_measured_bandwidth"] = bytes / decode_s / 1e9 / ceiling_gbps;  // target ≥ 0.8
    j["decode_fraction_of_spec_peak"] = bytes / decode_s / 1e9 / peak;
  }
  nexus::bench::write_json(j, out_path);
  return 0;
}
