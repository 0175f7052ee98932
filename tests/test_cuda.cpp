// The CUDA backend against transformers' outputs and the CPU reference, on every fixture:
// fp32 within the CPU parity bounds; bf16 logits NMSE ≤ 1e-3 and fp16 ≤ 1e-4 against fp32, with
// the same greedy first token. Exits with 77 (CTest: skipped) when no CUDA device is present.
// Environment (tools/gpu/proof.sh): NEXUS_CUDA_FIXTURES=a,b runs only those fixtures (the sanitizer's
// subset); NEXUS_CUDA_REPORT=FILE appends one JSON line per fixture and check with the raw numbers.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cuda_runtime_api.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "nexus/backend/cpu/model.hpp"
#include "nexus/backend/cuda/model.hpp"
#include "nexus/generate/parity_check.hpp"
#include "nexus/model/traits.hpp"
#include "nexus/registry/registry.hpp"
#include "reference.hpp"

using namespace nexus;
namespace fs = std::filesystem;

namespace {
/// The fixtures the CUDA backend runs: not those using a feature only the CPU model has so far (experts, ...);
/// with NEXUS_CUDA_FIXTURES set, only the fixtures it names (comma-separated folder names).
std::vector<fs::path> cuda_fixtures() {
  std::vector<std::string> only;
  if (const char* e = std::getenv("NEXUS_CUDA_FIXTURES"); e && *e) {
    std::stringstream in(e);
    for (std::string name; std::getline(in, name, ',');) only.push_back(name);
  }
  std::vector<fs::path> out;
  for (const auto& dir : test::models_with_outputs()) {
    if (!only.empty() && std::find(only.begin(), only.end(), dir.filename().string()) == only.end()) continue;
    if (const auto feature = cpu_only_feature(registry::describe(dir)); feature.empty()) out.push_back(dir);
    else WARN(dir.filename().string() << ": CPU only (" << feature << ")");
  }
  return out;
}

/// One JSON line to $NEXUS_CUDA_REPORT, when set.
void report(const nlohmann::json& line) {
  if (const char* path = std::getenv("NEXUS_CUDA_REPORT"); path && *path)
    std::ofstream(path, std::ios::app) << line.dump() << "\n";
}

std::string family_of(const fs::path& dir) { return test::load_json(dir / "config.json").value("model_type", ""); }
}  // namespace

TEST_CASE("CUDA fp32 matches transformers within the CPU parity bounds, greedy tokens included") {
  for (const auto& dir : cuda_fixtures()) {
    INFO("fixture " << dir.filename().string());
    const auto m = cuda::load_model(dir, cuda::precision::fp32);
    const checkpoint ref(dir / "outputs.safetensors");
    const auto rep = check_parity(*m, ref);
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : rep.rows) {
      INFO(r.tensor << ": max|d| " << r.stats.max_abs << " NMSE " << r.stats.nmse);
      CHECK(r.ok);
      rows.push_back({{"tensor", r.tensor}, {"max_abs", r.stats.max_abs}, {"nmse", r.stats.nmse}, {"ok", r.ok}});
    }
    // The CPU path on the same ids, for the record: CUDA fp32 logits against the CPU model's (fp32 weights).
    const auto ids = reference_ids(ref, "seq2.input_ids");
    const auto cpu = load_cpu_model(dir, {.threads = 1, .precision = weight_precision::fp32});
    auto cpu_cache = cpu->new_cache(std::int64_t(ids.size())), gpu_cache = m->new_cache(std::int64_t(ids.size()));
    const auto vs_cpu = compare(m->forward(ids, gpu_cache).logits.data, cpu->forward(ids, cpu_cache).logits.data);
    report({{"check", "fp32_parity"},
            {"fixture", dir.filename().string()},
            {"family", family_of(dir)},
            {"ok", rep.ok()},
            {"rows", rows},
            {"vs_cpu_logits", {{"max_abs", vs_cpu.max_abs}, {"max_ref", vs_cpu.max_ref}, {"nmse", vs_cpu.nmse}}}});
  }
}

TEST_CASE("CUDA bf16 and fp16 stay close to the fp32 reference") {
  for (const auto& dir : cuda_fixtures()) {
    INFO("fixture " << dir.filename().string());
    const checkpoint ref(dir / "outputs.safetensors");
    const auto ids = reference_ids(ref, "seq2.input_ids");
    const auto want = reference_floats(ref, "seq2.logits");
    for (const auto [p, bound] : {std::pair{cuda::precision::bf16, 1e-3}, std::pair{cuda::precision::fp16, 1e-4}}) {
      const auto m = cuda::load_model(dir, p);
      auto cache = m->new_cache(std::int64_t(ids.size()));
      const auto got = m->forward(ids, cache).logits.data;
      const auto s = compare(got, want);
      const char* name = p == cuda::precision::bf16 ? "bf16" : "fp16";
      INFO(name << " NMSE " << s.nmse);
      CHECK(s.nmse <= bound);
      const auto vocab = std::size_t(m->arch().dims.vocab_size);
      const std::span<const float> last_got(got.data() + got.size() - vocab, vocab),
          last_want(want.data() + want.size() - vocab, vocab);
      const bool same_token = std::max_element(last_got.begin(), last_got.end()) - last_got.begin() ==
                              std::max_element(last_want.begin(), last_want.end()) - last_want.begin();
      CHECK(same_token);
      report({{"check", "low_precision"},
              {"fixture", dir.filename().string()},
              {"family", family_of(dir)},
              {"precision", name},
              {"nmse", s.nmse},
              {"max_abs", s.max_abs},
              {"bound", bound},
              {"greedy_first_token_same", same_token},
              {"ok", s.nmse <= bound && same_token}});
    }
  }
}

TEST_CASE("CUB arg-max equals the host arg-max") {
  const int rows = 3, vocab = 1000;
  std::vector<float> logits(rows * vocab);
  for (int i = 0; i < rows * vocab; ++i) logits[std::size_t(i)] = float((i * 7919) % 1009) - 500.0f;
  float* d = nullptr;
  int* out = nullptr;
  void* temp = nullptr;
  const auto bytes = cuda::argmax_temp_bytes(rows, vocab);
  REQUIRE(cudaMalloc(reinterpret_cast<void**>(&d), logits.size() * 4) == cudaSuccess);
  REQUIRE(cudaMalloc(reinterpret_cast<void**>(&out), rows * 4) == cudaSuccess);
  REQUIRE(cudaMalloc(&temp, bytes) == cudaSuccess);
  cudaMemcpy(d, logits.data(), logits.size() * 4, cudaMemcpyHostToDevice);
  cuda::argmax(d, rows, vocab, out, temp, bytes, nullptr);
  std::vector<int> got(rows);
  cudaMemcpy(got.data(), out, rows * 4, cudaMemcpyDeviceToHost);
  for (int r = 0; r < rows; ++r) {
    const auto* row = logits.data() + r * vocab;
    CHECK(got[std::size_t(r)] == std::max_element(row, row + vocab) - row);
  }
  cudaFree(d), cudaFree(out), cudaFree(temp);
}

int main(int argc, char** argv) {
  if (cuda::device_count() == 0) {
    std::printf("no CUDA device: GPU tests skipped\n");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
