// The CPU kernels on stored weights, on every instruction set this processor runs, against the
// reference block decoders (io/gguf_blocks.hpp, themselves bit-exact with gguf.quants):
// - decoding a row is bit-identical to gguf::dequantize_row;
// - a dot product differs from the exact (fp64) dot of the decoded row with x by at most
//   n·u·Σ|w_i·x_i| (u = 2⁻²⁴): the standard bound for a float sum of n products in any order
//   (Higham, Accuracy and Stability, §3.1), which every summation order our kernels use satisfies.
//   Tighter bounds would depend on the order; looser ones would not catch a wrong lane or block.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include "nexus/backend/cpu/kernels.hpp"
#include "nexus/backend/cpu/model.hpp"
#include "nexus/core/thread_pool.hpp"
#include "nexus/model/parity.hpp"
#include "reference.hpp"

using namespace nexus;

namespace {

/// Random finite values for the f16 scale fields of a block, random bytes for the rest.
template <class B>
void fill_block(std::byte* p, std::mt19937& rng) {
  std::uniform_int_distribution<int> byte(0, 255);
  for (std::size_t i = 0; i < sizeof(B); ++i) p[i] = std::byte(byte(rng));
  std::uniform_real_distribution<float> mag(-1.0f, 1.0f);
  auto put_f16 = [&](std::size_t off) {
    // f16 with exponent in [-12, 0): sign, exponent 3..14, random mantissa
    const std::uint16_t h =
        std::uint16_t((byte(rng) & 1) << 15 | (3 + byte(rng) % 12) << 10 | (byte(rng) << 2 & 0x3FF));
    std::memcpy(p + off, &h, 2);
  };
  if constexpr (std::is_same_v<B, gguf::block_f32>) {
    const float v = mag(rng);
    std::memcpy(p, &v, 4);
  } else if constexpr (std::is_same_v<B, gguf::block_f16>) {
    put_f16(0);
  } else if constexpr (std::is_same_v<B, gguf::block_bf16>) {
    const float v = mag(rng);
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    const std::uint16_t h = std::uint16_t(u >> 16);
    std::memcpy(p, &h, 2);
  } else {
    if constexpr (requires { B::d; }) put_f16(offsetof(B, d));
    if constexpr (requires { B::m; }) put_f16(offsetof(B, m));
    if constexpr (requires { B::dmin; }) put_f16(offsetof(B, dmin));
  }
}

struct row_set {
  gguf::tensor_type type;
  std::int64_t rows, n;
  std::size_t row_bytes;
  std::vector<std::byte> bytes;
};

row_set random_rows(gguf::tensor_type t, std::int64_t rows, std::int64_t n, std::mt19937& rng) {
  row_set s{t, rows, n, std::size_t(n / gguf::block_size(t) * gguf::type_size(t)), {}};
  s.bytes.resize(s.row_bytes * std::size_t(rows));
  gguf::visit_block(t, [&](auto block) {
    using B = typename decltype(block)::type;
    for (std::size_t at = 0; at < s.bytes.size(); at += sizeof(B)) fill_block<B>(s.bytes.data() + at, rng);
  });
  return s;
}

}  // namespace

TEST_CASE("CPU kernels on stored rows: decoding bit-exact, dot products within n·u·Σ|w·x|") {
  using gguf::tensor_type;
  // Every format with a SIMD decoder, plus Q5_1 and the K formats that go through the reference
  // decoder inside the SIMD kernels; widths with a tail for the elementwise types.
  const std::vector<std::pair<tensor_type, std::int64_t>> cases = {
      {tensor_type::f32, 37},   {tensor_type::f32, 64},   {tensor_type::f16, 45},   {tensor_type::bf16, 53},
      {tensor_type::q4_0, 96},  {tensor_type::q4_1, 96},  {tensor_type::q5_0, 96},  {tensor_type::q5_1, 96},
      {tensor_type::q8_0, 96},  {tensor_type::q2_k, 512}, {tensor_type::q3_k, 512}, {tensor_type::q4_k, 512},
      {tensor_type::q5_k, 512}, {tensor_type::q6_k, 512}};
  std::mt19937 rng(20261130);
  for (const auto isa : {cpu_isa::portable, cpu_isa::avx2, cpu_isa::avx512}) {
    if (!cpu::isa_available(isa)) {
      WARN("skipping " << reflect::to_string(isa) << ": not available on this processor");
      continue;
    }
    const auto& k = cpu::kernels_for(isa);
    for (const auto& [type, n] : cases) {
      INFO(reflect::to_string(isa) << " " << gguf::name_of(type) << " n=" << n);
      const std::int64_t rows = 7;  // a group of four rows and three single ones
      const auto w = random_rows(type, rows, n, rng);
      std::vector<float> want(std::size_t(rows * n)), got(want.size(), NAN);
      for (std::int64_t r = 0; r < rows; ++r)
        gguf::dequantize_row(type, w.bytes.data() + std::size_t(r) * w.row_bytes, want.data() + r * n, n);
      k.decode_rows(type, w.bytes.data(), w.row_bytes, rows, n, got.data());
      CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);

      std::vector<float> x(static_cast<std::size_t>(n)), y(static_cast<std::size_t>(rows), NAN);
      std::normal_distribution<float> normal;
      for (auto& v : x) v = normal(rng);
      k.dot_rows(type, w.bytes.data(), w.row_bytes, rows, x.data(), n, y.data());
      for (std::int64_t r = 0; r < rows; ++r) {
        double exact = 0, magnitude = 0;
        for (std::int64_t i = 0; i < n; ++i) {
          const double p = double(want[std::size_t(r * n + i)]) * double(x[std::size_t(i)]);
          exact += p;
          magnitude += std::abs(p);
        }
        const double bound = double(n) * std::ldexp(1.0, -24) * magnitude;
        INFO("row " << r << ": " << y[std::size_t(r)] << " vs exact " << exact << ", bound " << bound);
        CHECK(std::abs(double(y[std::size_t(r)]) - exact) <= bound);
      }
    }
    // The fp32 helpers of attention.
    std::vector<float> a(75), b(75), c(75, 1.0f);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = float(i % 7) - 3.0f, b[i] = 0.5f * float(i % 5);
    double exact = 0, magnitude = 0;
    for (std::size_t i = 0; i < a.size(); ++i) exact += double(a[i]) * b[i], magnitude += std::abs(double(a[i]) * b[i]);
    CHECK(std::abs(k.dot(a.data(), b.data(), 75) - exact) <= 75 * std::ldexp(1.0, -24) * magnitude);
    k.axpy(2.0f, a.data(), c.data(), 75);
    for (std::size_t i = 0; i < c.size(); ++i) CHECK(c[i] == 1.0f + 2.0f * a[i]);  // one rounding, exact here
  }
}

TEST_CASE("thread pool: every index exactly once, for any count and pool size") {
  for (int threads : {1, 2, 3, 5}) {
    thread_pool pool(threads);
    CHECK(pool.size() == threads);
    for (std::int64_t count : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(count));
      for (int rep = 0; rep < 3; ++rep) pool.parallel_for(count, [&](std::int64_t i) { hits[std::size_t(i)]++; });
      for (auto& h : hits) CHECK(h.load() == 3);
    }
  }
  CHECK_THROWS_AS(thread_pool(-1), usage_error);
  CHECK(shared_thread_pool(2).get() == shared_thread_pool(2).get());
}

namespace {

/// Every matrix of `w` cut to bf16 or f16 (truncated; f16 flushes what it cannot hold to zero): any
/// deterministic narrowing will do, both models below read the same narrowed values.
stored_weights narrowed(const stored_weights& w, gguf::tensor_type type) {
  stored_weights out;
  for (const auto& [name, t] : w) {
    if (t.shape.size() != 2) {
      out[name] = t;
      continue;
    }
    const auto f = t.to_f32();
    std::vector<std::byte> bytes(f.data.size() * 2);
    for (std::size_t i = 0; i < f.data.size(); ++i) {
      std::uint16_t h;
      std::uint32_t u;
      std::memcpy(&u, &f.data[i], 4);
      if (type == gguf::tensor_type::bf16) {
        h = std::uint16_t(u >> 16);
      } else {
        const int exp = int((u >> 23) & 0xFF) - 127 + 15;
        h = exp < 1 || exp > 30 ? std::uint16_t(0)
                                : std::uint16_t((u >> 16 & 0x8000u) | std::uint32_t(exp) << 10 | (u & 0x7FFFFFu) >> 13);
      }
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
    out[name] = own_bytes(t.shape, type, std::move(bytes));
  }
  return out;
}

std::vector<float> logits_of(const model& m, const std::vector<std::int32_t>& ids) {
  auto cache = m.new_cache(std::int64_t(ids.size()) + 1);
  auto all = m.forward(ids, cache).logits.data;  // prefill (a GEMM for four rows or more)
  const std::int32_t next = ids.front();
  auto step = m.forward(std::span<const std::int32_t>(&next, 1), cache).logits.data;  // dot products
  all.insert(all.end(), step.begin(), step.end());
  return all;
}

}  // namespace

TEST_CASE("a model on stored bf16 and f16 weights gives the logits of the same weights widened to fp32") {
  auto o = registry::open_checkpoint(test::data_dir() / "models" / "llama");
  const auto stored = unpack_stored(o.bound, o.arch);
  const std::vector<std::int32_t> ids = {1, 17, 42, 99, 5, 63, 7};
  for (const auto type : {gguf::tensor_type::bf16, gguf::tensor_type::f16}) {
    INFO(gguf::name_of(type));
    const auto w = narrowed(stored, type);
    weight_map widened;
    for (const auto& [name, t] : w) widened[name] = t.to_f32();
    const auto fast = make_cpu_model(o.arch, w, {.threads = 2});
    const auto reference = make_cpu_model(o.arch, std::move(widened), {.threads = 1});
    const auto a = logits_of(*fast, ids), b = logits_of(*reference, ids);
    const auto stats = compare(a, b);
    INFO("max |d| " << stats.max_abs << ", NMSE " << stats.nmse);
    CHECK(stats.within());
    // The thread count changes who computes an output, never how: results are bit-identical.
    const auto one_thread = make_cpu_model(o.arch, narrowed(stored, type), {.threads = 1});
    CHECK(logits_of(*one_thread, ids) == a);
  }
}
