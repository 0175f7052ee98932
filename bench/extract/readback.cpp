// Reads a whole feature store back through nexus::fusion::feature_store: every window, teacher and
// tapped layer; counts tokens and checks every hidden value is finite and every log-probability <= 0.
// Usage: extract_readback STORE   (bench/extract/accept.sh runs it on the real teachers' store)
#include <cmath>
#include <cstdio>
#include <vector>

#include "nexus/fusion/features/feature_store.hpp"
int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s STORE\n", argv[0]);
    return 2;
  }
  const nexus::fusion::feature_store s(argv[1]);
  std::vector<long long> tokens(s.teachers());
  long long bad = 0, values = 0;
  for (std::int64_t w = 0; w < s.windows(); ++w) {
    const auto v = s.window(w);
    for (std::size_t t = 0; t < s.teachers(); ++t) {
      tokens[t] += static_cast<long long>(v.tokens(t));
      for (const auto& key : s.layer_keys(t)) {
        const auto h = v.hidden(t, key);
        for (std::int64_t r = 0; r < std::int64_t(v.tokens(t)); ++r)
          for (std::int64_t c = 0; c < s.hidden_size(t); ++c, ++values) bad += !std::isfinite(h.at(r, c));
      }
      for (float lp : v.topk_logprobs(t)) bad += !(lp <= 0 && std::isfinite(lp));
    }
  }
  std::printf("store %s: complete=%d, %zu shards, %lld windows, %zu teachers\n", argv[1], int(s.complete()), s.shards(),
              static_cast<long long>(s.windows()), s.teachers());
  for (std::size_t t = 0; t < s.teachers(); ++t)
    std::printf("  teacher %zu %s: %lld tokens\n", t, s.teacher_name(t).c_str(), tokens[t]);
  std::printf("  %lld hidden values read, %lld non-finite or invalid\n", values, bad);
  return bad != 0;
}
