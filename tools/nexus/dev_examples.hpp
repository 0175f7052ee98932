// Development text to fit a fused system on (nexus bundle create --fit, nexus demo): JSON lines of
// prompts and answers, or documents.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/fusion/system/system.hpp"

namespace nexus::cli {

/// Development examples from a file: JSON lines with "prompt" and "answer" (or "continuation"), or
/// "text" (a document: its first bytes are the prompt); any other file is documents separated by blank lines.
inline std::vector<fusion::dev_example> read_dev_examples(const std::string& path, std::int64_t prefix_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error(path, "cannot read the development text");
  std::vector<fusion::dev_example> out;
  std::string line, doc;
  if (path.ends_with(".jsonl")) {
    for (std::size_t n = 1; std::getline(in, line); ++n) {
      if (line.empty()) continue;
      const auto where = path + ":" + std::to_string(n);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const std::exception& e) {
        throw usage_error(where, std::string("not JSON: ") + e.what());
      }
      auto str = [&](const char* k) -> std::string {
        if (!j.contains(k)) return {};
        if (!j[k].is_string()) throw usage_error(where, std::string("'") + k + "' must be a string");
        return j[k].get<std::string>();
      };
      if (j.is_object() && j.contains("text")) out.push_back(fusion::split_document(str("text"), prefix_bytes));
      else if (j.is_object() && j.contains("prompt"))
        out.push_back({str("prompt"), j.contains("answer") ? str("answer") : str("continuation")});
      else throw usage_error(where, "a row needs \"text\", or \"prompt\" and \"answer\"");
    }
  } else {
    auto flush = [&] {
      if (!doc.empty()) out.push_back(fusion::split_document(doc, prefix_bytes));
      doc.clear();
    };
    while (std::getline(in, line)) {
      if (line.empty()) flush();
      else doc += (doc.empty() ? "" : "\n") + line;
    }
    flush();
  }
  if (out.empty()) throw usage_error("--fit", path + " holds no development text");
  return out;
}

}  // namespace nexus::cli
