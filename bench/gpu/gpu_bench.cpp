// Kernel-level benchmarks of the CUDA backend, each against a ceiling measured on the same device in
// the same run (tools/gpu/proof.sh runs them; bench/README.md, "GPU"). Writes JSON (device, driver,
// command, raw timings, ratios) to stdout and --out. Exits 77 without a CUDA device.
//
//   gpu_bench bandwidth  [--bytes N]            copy-kernel HBM bandwidth (the ceiling of the others)
//   gpu_bench gemm       [--rows 1,512]         the projections of Llama-3.2-1B and Qwen2.5-0.5B (bf16 in,
//                                               fp32 out): nexus::cuda::gemm against the fastest of
//                                               cuBLASLt's heuristic algorithms, timed one by one
//   gpu_bench attention  [--tokens 512,2048,8192] causal prefill, head_dim 128, 32 query / 8 KV heads,
//                                               bf16 cache: TFLOP/s and the fraction of the dense bf16 peak
//   gpu_bench norm-rope  [--rows 8192]          fused residual + RMSNorm, and QKV RoPE + cache append
//                                               (Llama-3.2-1B widths): useful bytes / s over the ceiling
#include <CLI/CLI.hpp>
#include <cublasLt.h>

#include <cmath>
#include <memory>
#include <numeric>
#include <sstream>
#include <vector>

#include "ceiling.hpp"
#include "nexus/backend/cuda/gemm.hpp"
#include "nexus/backend/cuda/launch.hpp"

namespace nb = nexus::bench;
namespace nc = nexus::cuda;
using json = nlohmann::ordered_json;

namespace {

std::vector<int> parse_list(const std::string& text, const char* option) {
  std::vector<int> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    std::size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < 1) throw CLI::ValidationError(option, "'" + item + "' is not a positive integer");
    out.push_back(v);
  }
  if (out.empty()) throw CLI::ValidationError(option, "empty list");
  return out;
}

// ---- GEMM ------------------------------------------------------------------------------------------

struct projection {
  const char* model;
  const char* name;
  int n, k;  // D[rows, n] = A[rows, k] · W[n, k]ᵀ
};

// Llama-3.2-1B: hidden 2048, 32 heads / 8 KV heads of 64, MLP 8192, vocabulary 128256.
// Qwen2.5-0.5B: hidden 896, 14 heads / 2 KV heads of 64, MLP 4864, vocabulary 151936.
constexpr projection projections[] = {
    {"llama-3.2-1b", "qkv", 2048 + 2 * 512, 2048},
    {"llama-3.2-1b", "o", 2048, 2048},
    {"llama-3.2-1b", "gate_up", 2 * 8192, 2048},
    {"llama-3.2-1b", "down", 2048, 8192},
    {"llama-3.2-1b", "head", 128256, 2048},
    {"qwen2.5-0.5b", "qkv", 896 + 2 * 128, 896},
    {"qwen2.5-0.5b", "o", 896, 896},
    {"qwen2.5-0.5b", "gate_up", 2 * 4864, 896},
    {"qwen2.5-0.5b", "down", 896, 4864},
    {"qwen2.5-0.5b", "head", 151936, 896},
};

/// cuBLASLt descriptors as kernels/gemm.cpp makes them (bf16 A and W, fp32 D, fp32 compute, W transposed).
struct lt_problem {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  lt_problem(int rows, int n, int k) {
    nc::check(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul desc");
    const cublasOperation_t trans = CUBLAS_OP_T, none = CUBLAS_OP_N;
    nc::check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof trans), "transa");
    nc::check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof none), "transb");
    nc::check(cublasLtMatrixLayoutCreate(&a, CUDA_R_16BF, k, n, k), "layout W");
    nc::check(cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, k, rows, k), "layout A");
    nc::check(cublasLtMatrixLayoutCreate(&d, CUDA_R_32F, n, rows, n), "layout D");
  }
  lt_problem(const lt_problem&) = delete;
  lt_problem& operator=(const lt_problem&) = delete;
  ~lt_problem() {
    cublasLtMatrixLayoutDestroy(d), cublasLtMatrixLayoutDestroy(b), cublasLtMatrixLayoutDestroy(a);
    cublasLtMatmulDescDestroy(op);
  }
};

/// Up to `count` algorithms cuBLASLt's heuristic offers for the problem within the workspace.
std::vector<cublasLtMatmulHeuristicResult_t> heuristics(cublasLtHandle_t h, const lt_problem& p, std::size_t workspace,
                                                        int count) {
  cublasLtMatmulPreference_t pref = nullptr;
  nc::check(cublasLtMatmulPreferenceCreate(&pref), "preference");
  nc::check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                                 sizeof workspace),
            "workspace");
  std::vector<cublasLtMatmulHeuristicResult_t> r(static_cast<std::size_t>(count));
  int found = 0;
  const auto st = cublasLtMatmulAlgoGetHeuristic(h, p.op, p.a, p.b, p.d, p.d, pref, count, r.data(), &found);
  cublasLtMatmulPreferenceDestroy(pref);
  nc::check(st, "algorithm heuristic");
  r.resize(std::size_t(found));
  return r;
}

json run_gemm(const std::vector<int>& row_counts, int reps) {
  constexpr std::size_t workspace_bytes = 32u << 20;  // nexus::cuda::gemm's default
  cudaDeviceProp prop{};
  nc::check(cudaGetDeviceProperties(&prop, 0), "device properties");
  nc::stream st;
  nc::gemm nexus_gemm(workspace_bytes);
  cublasLtHandle_t lt = nullptr;
  nc::check(cublasLtCreate(&lt), "create");
  nc::device_buffer workspace(workspace_bytes);
  json rows_out = json::array();
  double worst = 1e30;
  for (const int rows : row_counts)
    for (const auto& pj : projections) {
      // Enough copies of W that the rotation through them is well above L2, as in a decode step where
      // every layer reads its own weights: timings then come from HBM, not from the cache.
      const std::size_t w_bytes = std::size_t(pj.n) * std::size_t(pj.k) * 2;
      const int copies = int(std::clamp<std::size_t>((4 * std::size_t(prop.l2CacheSize)) / w_bytes + 1, 1, 64));
      nc::device_buffer w(w_bytes * std::size_t(copies)), a(std::size_t(rows) * std::size_t(pj.k) * 2),
          d(std::size_t(rows) * std::size_t(pj.n) * 4);
      nc::check(nb::fill_bf16(w.get(), w_bytes / 2 * std::size_t(copies), 0.02f, 1, st.get()), "fill");
      nc::check(nb::fill_bf16(a.get(), std::size_t(rows) * std::size_t(pj.k), 1.0f, 2, st.get()), "fill");
      int turn = 0;
      auto w_at = [&] { return static_cast<const char*>(w.get()) + w_bytes * std::size_t(turn++ % copies); };
      const double nexus_ms = nb::best_ms(st.get(), reps, copies, [&] {
        nexus_gemm.run(a.get(), w_at(), nullptr, d.as<float>(), rows, pj.n, pj.k, nc::precision::bf16, st.get());
      });
      lt_problem prob(rows, pj.n, pj.k);
      const auto algos = heuristics(lt, prob, workspace_bytes, 32);
      json tried = json::array();
      double best = 1e30;
      int best_index = -1;
      const float alpha = 1.0f, beta = 0.0f;
      for (std::size_t i = 0; i < algos.size(); ++i) {
        if (algos[i].state != CUBLAS_STATUS_SUCCESS) continue;
        double ms = 0;
        try {
          ms = nb::best_ms(st.get(), reps, copies, [&] {
            nc::check(cublasLtMatmul(lt, prob.op, &alpha, w_at(), prob.a, a.get(), prob.b, &beta, d.get(), prob.d,
                                     d.get(), prob.d, &algos[i].algo, workspace.get(), workspace_bytes, st.get()),
                      "matmul");
          });
        } catch (const std::exception& e) {  // an algorithm the heuristic offered but that fails to run
          tried.push_back({{"index", i}, {"error", e.what()}});
          continue;
        }
        tried.push_back({{"index", i}, {"ms", ms}});
        if (ms < best) best = ms, best_index = int(i);
      }
      const double flops = 2.0 * rows * double(pj.n) * pj.k;
      const double bytes = double(w_bytes) + rows * double(pj.k) * 2 + rows * double(pj.n) * 4;
      const double ratio = best < 1e30 ? best / nexus_ms : 0.0;  // ≥ 0.9: the target
      worst = std::min(worst, ratio);
      rows_out.push_back({{"model", pj.model},
                          {"projection", pj.name},
                          {"rows", rows},
                          {"n", pj.n},
                          {"k", pj.k},
                          {"weight_copies_rotated", copies},
                          {"nexus_ms", nexus_ms},
                          {"cublaslt_best_ms", best},
                          {"cublaslt_best_heuristic_index", best_index},
                          {"cublaslt_heuristic_count", algos.size()},
                          {"nexus_tflops", flops / (nexus_ms * 1e-3) / 1e12},
                          {"nexus_gb_per_s", bytes / (nexus_ms * 1e-3) / 1e9},
                          {"fraction_of_cublaslt_best", ratio},
                          {"cublaslt_algorithms", tried}});
      fmt::print(stderr, "gemm {} {} rows {}: nexus {:.4f} ms, cuBLASLt best {:.4f} ms ({:.3f})\n", pj.model, pj.name,
                 rows, nexus_ms, best, ratio);
    }
  // A measured dense bf16 ceiling beside the data sheet's: the best of cuBLASLt's algorithms on 8192³.
  double peak_tflops = 0;
  {
    const int m = 8192;
    nc::device_buffer a(std::size_t(m) * m * 2), w(std::size_t(m) * m * 2), d(std::size_t(m) * m * 4);
    nc::check(nb::fill_bf16(a.get(), std::size_t(m) * m, 1.0f, 3, st.get()), "fill");
    nc::check(nb::fill_bf16(w.get(), std::size_t(m) * m, 1.0f, 4, st.get()), "fill");
    lt_problem prob(m, m, m);
    const float alpha = 1.0f, beta = 0.0f;
    const auto algos = heuristics(lt, prob, workspace_bytes, 8);
    for (const auto& al : algos) {
      if (al.state != CUBLAS_STATUS_SUCCESS) continue;
      try {
        const double ms = nb::best_ms(st.get(), 3, 3, [&] {
          nc::check(cublasLtMatmul(lt, prob.op, &alpha, w.get(), prob.a, a.get(), prob.b, &beta, d.get(), prob.d,
                                   d.get(), prob.d, &al.algo, workspace.get(), workspace_bytes, st.get()),
                    "matmul");
        });
        peak_tflops = std::max(peak_tflops, 2.0 * double(m) * m * m / (ms * 1e-3) / 1e12);
      } catch (const std::exception&) {
        // an algorithm offered that fails to run does not count
      }
    }
  }
  cublasLtDestroy(lt);
  return {{"shapes", rows_out},
          {"worst_fraction_of_cublaslt_best", worst},
          {"target_fraction", 0.9},
          {"measured_bf16_tflops_8192_cubed", peak_tflops}};
}

// ---- attention ---------------------------------------------------------------------------------------

json run_attention(const std::vector<int>& token_counts, int reps, double peak_tflops) {
  constexpr int heads = 32, kv_heads = 8, hd = 128;
  nc::stream st;
  json out = json::array();
  for (const int n : token_counts) {
    nc::device_buffer q(std::size_t(n) * heads * hd * 4), k(std::size_t(n) * kv_heads * hd * 2),
        v(std::size_t(n) * kv_heads * hd * 2), o(std::size_t(n) * heads * hd * 2), first(4), work(64);
    nc::check(nb::fill_f32(q.as<float>(), std::size_t(n) * heads * hd, 1.0f, 0.0f, 5, st.get()), "fill");
    nc::check(nb::fill_bf16(k.get(), std::size_t(n) * kv_heads * hd, 1.0f, 6, st.get()), "fill");
    nc::check(nb::fill_bf16(v.get(), std::size_t(n) * kv_heads * hd, 1.0f, 7, st.get()), "fill");
    nc::check(cudaMemsetAsync(first.get(), 0, 4, st.get()), "first");
    nc::attention_args a;
    a.q = q.as<float>(), a.k_cache = k.get(), a.v_cache = v.get(), a.out = o.get(), a.work = work.as<float>();
    a.first = first.as<int>(), a.heads = heads, a.kv_heads = kv_heads, a.head_dim = hd;
    a.scale = float(1.0 / std::sqrt(double(hd))), a.splits = 1;
    const double ms = nb::best_ms(st.get(), reps, 1, [&] { nc::attention(a, n, nc::precision::bf16, st.get()); });
    // FlashAttention's count for a causal forward: 4 · n² · head_dim · heads, halved.
    const double flops = 4.0 * double(n) * n * hd * heads / 2;
    const double tflops = flops / (ms * 1e-3) / 1e12;
    out.push_back({{"tokens", n},
                   {"heads", heads},
                   {"kv_heads", kv_heads},
                   {"head_dim", hd},
                   {"ms", ms},
                   {"tflops", tflops},
                   {"fraction_of_spec_bf16_peak", peak_tflops > 0 ? tflops / peak_tflops : 0.0}});
    fmt::print(stderr, "attention {} tokens: {:.3f} ms, {:.1f} TFLOP/s\n", n, ms, tflops);
  }
  return {
      {"runs", out},
      {"spec_bf16_tflops", peak_tflops},
      // FlashAttention-3 paper (Shah et al., 2024): FlashAttention-2's forward reaches about 35% of the H100's peak.
      {"target_fraction", 0.35},
      {"target_source", "FlashAttention-2 forward on H100: about 35% of peak (FlashAttention-3 paper, 2024)"}};
}

// ---- norm and RoPE -------------------------------------------------------------------------------------

json run_norm_rope(int rows, int reps, double ceiling_gbps) {
  constexpr int hidden = 2048, heads = 32, kv_heads = 8, hd = 64;  // Llama-3.2-1B
  constexpr int qw = heads * hd, kw = kv_heads * hd;
  nc::stream st;
  const std::size_t R = std::size_t(rows);
  json out = json::object();
  {  // x += branch; out = rms_norm(x) · weight (bf16): the sequential block's step between sublayers
    nc::device_buffer x(R * hidden * 4), branch(R * hidden * 4), y(R * hidden * 2), weight(hidden * 4);
    nc::check(nb::fill_f32(x.as<float>(), R * hidden, 1.0f, 0.0f, 8, st.get()), "fill");
    nc::check(nb::fill_f32(branch.as<float>(), R * hidden, 1e-3f, 0.0f, 9, st.get()), "fill");
    nc::check(nb::fill_f32(weight.as<float>(), hidden, 0.1f, 1.0f, 10, st.get()), "fill");
    nc::residual_norm_args a;
    a.x = x.as<float>(), a.branch1 = branch.as<float>(), a.out_a = y.get();
    a.norm_a = {.weight = weight.as<float>(), .bias = nullptr, .present = true};
    const nc::norm_config cfg{nexus::norm_kind::rms, 1e-5f, false};
    const double ms =
        nb::best_ms(st.get(), reps, 3, [&] { nc::residual_norm(a, rows, hidden, cfg, nc::precision::bf16, st.get()); });
    const double bytes = double(R) * hidden * (4 + 4 + 4 + 2);  // read x, branch; write x, out
    const double gbps = bytes / (ms * 1e-3) / 1e9;
    out["residual_rms_norm"] = {{"rows", rows},   {"hidden", hidden}, {"ms", ms},
                                {"bytes", bytes}, {"gb_per_s", gbps}, {"fraction_of_ceiling", gbps / ceiling_gbps}};
  }
  {  // RoPE on q and k (llama3 frequencies need not matter for time), q out, k and v appended to the bf16 caches
    nc::device_buffer qkv(R * (qw + 2 * kw) * 4), q(R * qw * 4), kc(R * kw * 2), vc(R * kw * 2), inv(hd / 2 * 4),
        first(4);
    nc::check(nb::fill_f32(qkv.as<float>(), R * (qw + 2 * kw), 1.0f, 0.0f, 11, st.get()), "fill");
    std::vector<float> inv_freq(hd / 2);
    for (int j = 0; j < hd / 2; ++j) inv_freq[std::size_t(j)] = float(std::pow(500000.0, -2.0 * j / hd));
    nc::check(cudaMemcpyAsync(inv.get(), inv_freq.data(), inv_freq.size() * 4, cudaMemcpyHostToDevice, st.get()),
              "inv_freq");
    nc::check(cudaMemsetAsync(first.get(), 0, 4, st.get()), "first");
    st.sync("inputs");
    nc::qkv_args a;
    a.qkv = qkv.as<float>(), a.q_out = q.as<float>(), a.k_cache = kc.get(), a.v_cache = vc.get();
    a.first = first.as<int>(), a.heads = heads, a.kv_heads = kv_heads, a.head_dim = hd;
    a.position = nexus::position_kind::rope, a.style = nexus::rope_style::neox, a.inv_freq = inv.as<float>();
    a.rotary_dim = hd;
    const nc::norm_config cfg{nexus::norm_kind::rms, 1e-5f, false};
    const double ms =
        nb::best_ms(st.get(), reps, 3, [&] { nc::qkv_rope_append(a, rows, cfg, nc::precision::bf16, st.get()); });
    const double bytes = double(R) * ((qw + 2 * kw) * 4 + qw * 4 + 2 * kw * 2);  // read qkv; write q, k, v
    const double gbps = bytes / (ms * 1e-3) / 1e9;
    out["qkv_rope_append"] = {
        {"rows", rows}, {"heads", heads}, {"kv_heads", kv_heads}, {"head_dim", hd},
        {"ms", ms},     {"bytes", bytes}, {"gb_per_s", gbps},     {"fraction_of_ceiling", gbps / ceiling_gbps}};
  }
  out["bytes_counted"] = "each input read once and each output written once (the least the step must move)";
  out["target_fraction"] = 0.85;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Kernel benchmarks of the CUDA backend against ceilings measured in the same run"};
  app.require_subcommand(1);
  app.fallthrough();  // --out and --reps before or after the subcommand
  std::string out_path, rows_text = "1,512", tokens_text = "512,2048,8192";
  int reps = 5, norm_rows = 8192;
  std::size_t bytes = std::size_t(1) << 30;
  app.add_option("--out", out_path, "JSON file to write (also printed)");
  app.add_option("--reps", reps, "timed repeats; the best is kept")->check(CLI::Range(1, 1000));
  auto* bw = app.add_subcommand("bandwidth", "copy-kernel HBM bandwidth");
  bw->add_option("--bytes", bytes, "bytes per copy (default 1 GiB)")
      ->check(CLI::Range(std::size_t(1) << 20, std::size_t(1) << 36));
  auto* gemm = app.add_subcommand("gemm", "projection GEMMs against cuBLASLt's best algorithm");
  gemm->add_option("--rows", rows_text, "token rows, comma-separated (default 1,512)");
  auto* attn = app.add_subcommand("attention", "causal prefill attention, head_dim 128");
  attn->add_option("--tokens", tokens_text, "sequence lengths, comma-separated (default 512,2048,8192)");
  auto* nr = app.add_subcommand("norm-rope", "fused residual + RMSNorm, QKV RoPE + append");
  nr->add_option("--rows", norm_rows, "token rows (default 8192)")->check(CLI::Range(1, 1 << 20));
  CLI11_PARSE(app, argc, argv);
  const auto command = nb::command_line(argc, argv);
  std::vector<int> row_counts, token_counts;
  try {  // arguments are checked before the device, so a dry run checks them too
    if (gemm->parsed()) row_counts = parse_list(rows_text, "--rows");
    if (attn->parsed()) token_counts = parse_list(tokens_text, "--tokens");
    if (bytes % 16 != 0) throw CLI::ValidationError("--bytes", "must be a multiple of 16");
  } catch (const CLI::Error& e) {
    return app.exit(e);
  }
  if (!nb::have_device()) return nb::no_device("gpu_bench", command, out_path);
  try {
    json j = nb::device_info();
    j["command"] = command;
    j["status"] = "ok";
    const json ceiling = nb::measure_copy_bandwidth(bw->parsed() ? bytes : std::size_t(1) << 30);
    j["bandwidth"] = ceiling;
    const double ceiling_gbps = ceiling["ceiling_gb_per_s"].get<double>();
    if (gemm->parsed()) j["gemm"] = run_gemm(row_counts, reps);
    if (attn->parsed())
      j["attention"] = run_attention(token_counts, reps, nb::spec_bf16_tflops(j["device"].get<std::string>()));
    if (nr->parsed()) j["norm_rope"] = run_norm_rope(norm_rows, reps, ceiling_gbps);
    nb::write_json(j, out_path);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "gpu_bench: {}\n", e.what());
    return 1;
  }
}
