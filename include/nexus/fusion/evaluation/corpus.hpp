// An evaluation corpus on disk: DIR/<domain>/dev/*.txt and DIR/<domain>/test/*.txt, one document per
// file (bench/fusion/make_eval_corpus.py builds one; docs/fusion.md, "Evaluating a fused system");
// DIR/probes holds capability probes (probes.hpp), not a domain.
// Every file is checked as it is read: a domain without one of its splits, a split without documents,
// an empty document or one that is not UTF-8 is an error that names the path (and the byte).
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nexus/core/error.hpp"
#include "nexus/tokenizer/utf8.hpp"

namespace nexus::fusion {

struct eval_document {
  std::string domain, path, text;  // path: relative to the corpus folder ("german/test/0001.txt")
};

/// The documents of a corpus: every domain's dev and test files, in name order.
struct eval_corpus {
  std::vector<std::string> domains;  // sorted
  std::vector<eval_document> dev, test;
};

/// The offset of the first byte of `s` that does not start or continue a valid UTF-8 character.
inline std::size_t first_invalid_utf8(std::string_view s) {
  std::size_t at = 0;
  while (at < s.size()) {
    const auto n = utf8::sequence_length(static_cast<unsigned char>(s[at]));
    if (at + n > s.size() || !utf8::valid(s.substr(at, n))) return at;
    at += n;
  }
  return at;
}

/// Reads the corpus folder `dir` (see the top of this file); throws io_error or usage_error naming the path.
inline eval_corpus read_eval_corpus(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw io_error(dir.string(), "no such corpus folder");
  eval_corpus c;
  for (const auto& e : fs::directory_iterator(dir))
    if (const auto name = e.path().filename().string(); e.is_directory() && name[0] != '.' && name != "probes")
      c.domains.push_back(name);
  std::sort(c.domains.begin(), c.domains.end());
  if (c.domains.empty()) throw usage_error(dir.string(), "no domain folders (expected DIR/<domain>/{dev,test}/*.txt)");
  for (const auto& domain : c.domains)
    for (const char* split : {"dev", "test"}) {
      const auto folder = dir / domain / split;
      const auto rel = fs::path(domain) / split;
      if (!fs::is_directory(folder))
        throw usage_error(folder.string(), std::string("domain '") + domain + "' has no " + split + " folder");
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(folder))
        if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path());
      std::sort(files.begin(), files.end());
      if (files.empty()) throw usage_error(folder.string(), "no documents (*.txt)");
      for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        if (!in) throw io_error(f.string(), "cannot read the document");
        std::stringstream ss;
        ss << in.rdbuf();
        auto text = ss.str();
        if (text.empty()) throw usage_error(f.string(), "empty document");
        if (const auto bad = first_invalid_utf8(text); bad < text.size())
          throw usage_error(f.string(), "not valid UTF-8 at byte " + std::to_string(bad));
        (std::string(split) == "dev" ? c.dev : c.test)
            .push_back({domain, (rel / f.filename()).generic_string(), std::move(text)});
      }
    }
  return c;
}

}  // namespace nexus::fusion
