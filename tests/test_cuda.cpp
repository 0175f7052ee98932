// The CUDA backend against transformers' outputs and the CPU reference, on every fixture:
// fp32 within the CPU parity bounds; bf16 logits NMSE ≤ 1e-3 and fp16 ≤ 1e-4 against fp32, with
// the same greedy first token. Exits with 77 (CTest: skipped) when no CUDA device is present.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cuda_runtime_api.h>

#include "nexus/backend/cuda/model.hpp"
#include "nexus/generate/parity_check.hpp"
#include "nexus/model/traits.hpp"
#include "nexus/registry/registry.hpp"
#include "reference.hpp"

using namespace nexus;
namespace fs = std::filesystem;

namespace {
/// The fixtures the CUDA backend runs: not those using a feature only the CPU model has so far (experts, ...).
std::vector<fs::path> cuda_fixtures() {
  std::vector<fs::path> out;
  for (const auto& dir : test::models_with_outputs())
    if (const auto feature = cpu_only_feature(registry::describe(dir)); feature.empty()) out.push_back(dir);
    else WARN(dir.filename().string() << ": CPU only (" << feature << ")");
  return out;
}
}  // namespace

TEST_CASE("CUDA fp32 matches transformers within the CPU parity bounds, greedy tokens included") {
  for (const auto& dir : cuda_fixtures()) {
    INFO("fixture " << dir.filename().string());
    const auto m = cuda::load_model(dir, cuda::precision::fp32);
    const auto rep = check_parity(*m, checkpoint(dir / "outputs.safetensors"));
    for (const auto& r : rep.rows) {
      INFO(r.tensor << ": max|d| " << r.stats.max_abs << " NMSE " << r.stats.nmse);
      CHECK(r.ok);
    }
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
      INFO((p == cuda::precision::bf16 ? "bf16" : "fp16") << " NMSE " << s.nmse);
      CHECK(s.nmse <= bound);
      const auto vocab = std::size_t(m->arch().dims.vocab_size);
      const std::span<const float> last_got(got.data() + got.size() - vocab, vocab),
          last_want(want.data() + want.size() - vocab, vocab);
      CHECK(std::max_element(last_got.begin(), last_got.end()) - last_got.begin() ==
            std::max_element(last_want.begin(), last_want.end()) - last_want.begin());
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
