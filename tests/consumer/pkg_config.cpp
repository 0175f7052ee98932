// Built with only `pkg-config --cflags --libs nexus` (run.cmake): the tokenizer (PCRE2, utf8proc) and
// SHA-256 (libcrypto) link from what nexus.pc names.
#include <nexus/io/sha256.hpp>
#include <nexus/tokenizer/tokenizer.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const auto tok = nexus::tokenizer::load(argv[1]);
  const std::string text = "Hello";
  std::printf("%zu %s\n", tok.encode(text).size(), nexus::sha256_hex(std::as_bytes(std::span(text))).c_str());
  return 0;
}
