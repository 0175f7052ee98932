// The corpus an extraction reads: its files and documents (plain text, or JSON Lines with a "text"
// field), and the windows each document is split into so that every teacher reads the same bytes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/core/error.hpp"
#include "nexus/tokenizer/tokenizer.hpp"

namespace nexus::fusion {

// ---- corpus ------------------------------------------------------------------------------------

struct corpus_file {
  std::filesystem::path path;
  bool jsonl = false;  // JSON Lines with a "text" field; otherwise the whole file is one document
};

/// Files of the corpus arguments in order: a file as given, a folder's regular files recursively in
/// path order. `.jsonl` files are JSON Lines.
inline std::vector<corpus_file> list_corpus(const std::vector<std::filesystem::path>& paths) {
  namespace fs = std::filesystem;
  std::vector<corpus_file> out;
  auto add = [&](const fs::path& p) { out.push_back({p, p.extension() == ".jsonl"}); };
  for (const auto& p : paths) {
    if (fs::is_directory(p)) {
      std::vector<fs::path> files;
      for (const auto& e : fs::recursive_directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) add(f);
    } else if (fs::is_regular_file(p)) {
      add(p);
    } else {
      throw io_error(p.string(), "corpus path is neither a file nor a folder");
    }
  }
  if (out.empty()) throw usage_error("--corpus", "no files in the corpus");
  return out;
}

/// The documents of one corpus file.
inline std::vector<std::string> read_documents(const corpus_file& f) {
  std::ifstream in(f.path, std::ios::binary);
  if (!in) throw io_error(f.path.string(), "cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  if (!f.jsonl) return {std::move(all)};
  std::vector<std::string> docs;
  std::size_t line_no = 0;
  for (std::size_t at = 0; at < all.size();) {
    const auto nl = std::min(all.find('\n', at), all.size());
    const std::string_view line(all.data() + at, nl - at);
    ++line_no;
    at = nl + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = f.path.string() + ":" + std::to_string(line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw usage_error(where, std::string("not a JSON line: ") + e.what());
    }
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
      throw usage_error(where, "a JSON Lines record needs a string field \"text\"");
    docs.push_back(j["text"].get<std::string>());
  }
  return docs;
}

// ---- windows -----------------------------------------------------------------------------------

/// One window of one document: per teacher the prefix tokens (bos: span [begin, begin)) and the
/// document's tokens it covers, with their byte spans in the document.
struct window_plan {
  std::int64_t document = 0;
  std::int64_t begin = 0, end = 0;               // bytes of the document
  std::vector<std::vector<std::int32_t>> ids;    // per teacher
  std::vector<std::vector<std::int64_t>> spans;  // per teacher, begin and end per token
};

/// Splits a document into windows of at most `context` tokens for every teacher (its prefix tokens
/// included). A window ends at the furthest byte offset where every teacher has a token boundary and
/// none exceeds the context: there all teachers have read the same bytes. Where no such offset
/// exists, a window ends where the first teacher runs out of context, and a token of another
/// teacher that crosses that offset starts its next window.
inline std::vector<window_plan> plan_windows(std::string_view text, std::int64_t document,
                                             const std::vector<const tokenizer*>& toks, std::int64_t context) {
  const std::size_t T = toks.size();
  std::vector<encoding> enc;
  std::vector<std::size_t> cap, pos(T, 0);
  for (const auto* t : toks) {
    enc.push_back(t->encode_with_spans(text, false));
    const auto prefix = std::int64_t(t->prefix_ids().size());
    if (context <= prefix)
      throw usage_error("--context", std::to_string(context) + " leaves no room after the " + std::to_string(prefix) +
                                         " special tokens a teacher puts first");
    cap.push_back(std::size_t(context - prefix));
  }
  std::vector<window_plan> out;
  std::size_t start = 0;
  auto remaining = [&] {
    for (std::size_t t = 0; t < T; ++t)
      if (pos[t] < enc[t].ids.size()) return true;
    return false;
  };
  while (remaining()) {
    // Furthest offset each teacher's context reaches.
    std::size_t limit = text.size();
    for (std::size_t t = 0; t < T; ++t) {
      const auto n = enc[t].ids.size() - pos[t];
      if (n > cap[t]) limit = std::min(limit, enc[t].spans[pos[t] + cap[t] - 1].end);
    }
    // The furthest shared boundary in (start, limit]: an end of teacher 0 that every teacher has.
    auto ends_at = [&](std::size_t t, std::size_t offset) {
      const auto& s = enc[t].spans;
      const auto it = std::lower_bound(s.begin() + std::ptrdiff_t(pos[t]), s.end(), offset,
                                       [](const byte_span& a, std::size_t o) { return a.end < o; });
      return it != s.end() && it->end == offset;
    };
    std::size_t cut = limit;
    bool shared = false;
    for (std::size_t i = std::min(enc[0].ids.size(), pos[0] + cap[0]); i-- > pos[0] && !shared;) {
      const auto o = enc[0].spans[i].end;
      if (o > limit || o <= start) continue;
      bool all = true;
      for (std::size_t t = 1; t < T && all; ++t) all = ends_at(t, o);
      if (all) cut = o, shared = true;
    }
    window_plan w;
    w.document = document;
    w.begin = std::int64_t(start);
    w.end = std::int64_t(cut);
    for (std::size_t t = 0; t < T; ++t) {
      std::vector<std::int32_t> ids = toks[t]->prefix_ids();
      std::vector<std::int64_t> spans;
      for (std::size_t i = 0; i < ids.size(); ++i) spans.insert(spans.end(), {w.begin, w.begin});
      std::size_t taken = 0;
      while (pos[t] < enc[t].ids.size() && enc[t].spans[pos[t]].end <= cut && taken < cap[t]) {
        ids.push_back(enc[t].ids[pos[t]]);
        spans.insert(spans.end(), {std::int64_t(enc[t].spans[pos[t]].begin), std::int64_t(enc[t].spans[pos[t]].end)});
        ++pos[t], ++taken;
      }
      if (taken == 0) ids.clear(), spans.clear();  // nothing of the document for this teacher here
      w.ids.push_back(std::move(ids));
      w.spans.push_back(std::move(spans));
    }
    out.push_back(std::move(w));
    start = cut;
  }
  return out;
}

}  // namespace nexus::fusion
