// Encode throughput of the Nexus tokenizer on one thread: the same loop as
// bench/tokenizer_bench.py runs with the `tokenizers` library (one encode per line).
//   tokenizer_bench TOKENIZER_DIR TEXT_FILE [REPEATS]
#include <fmt/format.h>

#include <chrono>
#include <fstream>

#include "nexus/tokenizer/tokenizer.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    fmt::print(stderr, "usage: tokenizer_bench TOKENIZER_DIR TEXT_FILE [REPEATS]\n");
    return 2;
  }
  const auto tok = nexus::tokenizer::load(argv[1]);
  std::ifstream in(argv[2]);
  std::vector<std::string> lines;
  std::size_t bytes = 0;
  for (std::string line; std::getline(in, line);) bytes += line.size(), lines.push_back(std::move(line));
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
  double best = 1e30;
  std::size_t tokens = 0;
  for (int r = 0; r < repeats; ++r) {
    tokens = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& l : lines) tokens += tok.encode(l, false).size();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  fmt::print("{{\"tokens\": {}, \"bytes\": {}, \"seconds\": {:.6f}, \"mb_per_s\": {:.3f}}}\n", tokens, bytes, best,
             double(bytes) / best / 1e6);
  return 0;
}
