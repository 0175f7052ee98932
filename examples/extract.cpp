// Two teachers over a small corpus into a feature store, then read back: per window, each teacher's
// tokens with their byte spans, a hidden-state value, and the top next tokens; then the shared
// boundaries of the two teachers in the first window (nexus/fusion/bytes/token_alignment.hpp).
// Usage: extract TEACHER_A TEACHER_B CORPUS STORE  (folders or .gguf files; CORPUS a file or folder), e.g.
//   extract tests/data/models/llama tests/data/models/qwen2 README.md /tmp/store
#include <cstdio>
#include <exception>

#include "nexus/fusion/bytes/token_alignment.hpp"
#include "nexus/fusion/features/extract.hpp"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s TEACHER_A TEACHER_B CORPUS STORE\n", argv[0]);
    return 2;
  }
  try {
    nexus::fusion::extract_options o;
    o.teachers = {argv[1], argv[2]};
    o.corpus = {argv[3]};
    o.layers = {"-1", "final"};  // the last layer's residual stream and the final norm's output
    o.top_k = 3;
    o.context = 64;
    o.out = argv[4];
    const auto r = nexus::fusion::extract(o);  // a rerun resumes, or does nothing once complete
    std::printf("%lld windows in %lld shards\n", static_cast<long long>(r.windows), static_cast<long long>(r.shards));

    const nexus::fusion::feature_store store(argv[4]);
    const auto w = store.window(0);
    std::printf("window 0: document %lld, bytes [%lld, %lld)\n", static_cast<long long>(w.document()),
                static_cast<long long>(w.bytes().first), static_cast<long long>(w.bytes().second));
    std::vector<std::vector<nexus::byte_span>> spans(store.teachers());
    for (std::size_t t = 0; t < store.teachers(); ++t) {
      const auto ids = w.ids(t);
      const auto sp = w.spans(t);
      const auto h = w.hidden(t, "final");
      std::printf("%s: %zu tokens, hidden %lld wide\n", store.teacher_name(t).c_str(), ids.size(),
                  static_cast<long long>(h.width));
      for (std::size_t k = 0; k < std::min<std::size_t>(ids.size(), 6); ++k)
        std::printf("  id %6d bytes [%3lld, %3lld)  final[0] % .4f  next: %d (%.3f)\n", ids[k],
                    static_cast<long long>(sp[2 * k]), static_cast<long long>(sp[2 * k + 1]),
                    double(h.at(std::int64_t(k), 0)), w.topk_ids(t)[3 * k], double(w.topk_logprobs(t)[3 * k]));
      for (std::size_t k = 0; k < ids.size(); ++k)
        spans[t].push_back({std::size_t(sp[2 * k]), std::size_t(sp[2 * k + 1])});
    }
    const auto shared = nexus::fusion::shared_boundaries(spans[0], spans[1]);
    std::printf("%zu shared boundaries in window 0\n", shared.size());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "extract: %s\n", e.what());
    return 1;
  }
  return 0;
}
