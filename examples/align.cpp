// Aligns two tokenizers on one sentence: each token's byte span, then the shared boundaries where
// both have read exactly the same prefix. Usage: align TOKENIZER_A TOKENIZER_B ["text"]
// (a folder with tokenizer.json, or a .gguf file), e.g. with the fixtures:
//   align tests/data/tokenizers/gpt2 tests/data/tokenizers/gemma
#include <cstdio>
#include <exception>
#include <string>

#include "nexus/fusion/bytes/token_alignment.hpp"
#include "nexus/tokenizer/tokenizer.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER_A TOKENIZER_B [text]\n", argv[0]);
    return 2;
  }
  try {
    const std::string text = argc > 3 ? argv[3] : "Tokenizers disagree: naïve café-goers say 日本語 is 🙂.";
    const auto a = nexus::tokenizer::load(argv[1]), b = nexus::tokenizer::load(argv[2]);
    const auto ea = a.encode_with_spans(text, true), eb = b.encode_with_spans(text, true);
    auto show = [&](const char* name, const nexus::tokenizer& t, const nexus::encoding& e) {
      std::printf("%s: %zu tokens\n", name, e.ids.size());
      for (std::size_t k = 0; k < e.ids.size(); ++k)
        std::printf("  %3zu  [%3zu, %3zu)  %-8d %s\n", k, e.spans[k].begin, e.spans[k].end, e.ids[k],
                    t.token_text(e.ids[k]).c_str());
    };
    show("a", a, ea);
    show("b", b, eb);
    std::printf("shared boundaries (offset: last token of a, of b; the prefix both have read):\n");
    for (const auto& s : nexus::fusion::shared_boundaries(ea.spans, eb.spans))
      std::printf("  %3zu: %3zu %3zu  \"%s\"\n", s.offset, s.last_a, s.last_b, text.substr(0, s.offset).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
