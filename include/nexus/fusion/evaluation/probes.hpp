// Capability probes: multiple-choice items scored through the same byte-level likelihoods as the
// rest of the evaluation (a fused system has no logits of its own). An item is a context and its
// choices; a method answers the choice whose text (context · choice) it gives the fewest nats — the
// same argmax as the choice's own conditional log-probability, since the context is shared. Accuracy
// per task with a 95% Wilson score interval (Wilson 1927).
//
//   DIR/probes/<task>.jsonl: {"id": "...", "context": "...", "choices": ["...", ...], "answer": k}
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/core/error.hpp"
#include "nexus/fusion/evaluation/corpus.hpp"

namespace nexus::fusion {

struct probe_item {
  std::string id, context;
  std::vector<std::string> choices;
  std::size_t answer = 0;
};

struct probe_task {
  std::string name;  // the file's stem
  std::vector<probe_item> items;
};

/// The tasks of `dir` (every *.jsonl, in name order); each line checked, errors name file and line.
inline std::vector<probe_task> read_probe_tasks(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw io_error(dir.string(), "no such probes folder");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".jsonl") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw usage_error(dir.string(), "no probe tasks (*.jsonl)");
  std::vector<probe_task> tasks;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) throw io_error(f.string(), "cannot read the probe task");
    probe_task t{f.stem().string(), {}};
    std::size_t n = 0;
    for (std::string line; std::getline(in, line);) {
      ++n;
      if (line.empty()) continue;
      const auto where = f.string() + ":" + std::to_string(n);
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object() || !j.contains("context") || !j["context"].is_string() || !j.contains("choices") ||
          !j["choices"].is_array() || !j.contains("answer") || !j["answer"].is_number_unsigned())
        throw usage_error(where, "not an object with a string context, a list of choices and an answer index");
      probe_item item;
      item.id = j.value("id", t.name + "-" + std::to_string(n));
      item.context = j["context"].get<std::string>();
      for (const auto& c : j["choices"]) {
        if (!c.is_string() || c.get<std::string>().empty())
          throw usage_error(where, "a choice is not a non-empty string");
        item.choices.push_back(c.get<std::string>());
      }
      item.answer = j["answer"].get<std::size_t>();
      if (item.choices.size() < 2 || item.answer >= item.choices.size())
        throw usage_error(where, "needs two or more choices and an answer among them");
      for (const auto& c : item.choices)
        if (const auto text = item.context + c; first_invalid_utf8(text) < text.size())
          throw usage_error(where, "context and choice are not valid UTF-8");
      t.items.push_back(std::move(item));
    }
    if (t.items.empty()) throw usage_error(f.string(), "no items");
    tasks.push_back(std::move(t));
  }
  return tasks;
}

/// A proportion with its 95% Wilson score interval.
struct proportion {
  double value = 0, low = 0, high = 0;
};

inline proportion wilson_interval(std::size_t successes, std::size_t trials, double z = 1.959963984540054) {
  if (trials == 0) throw usage_error("wilson", "no trials");
  const double n = double(trials), p = double(successes) / n, z2 = z * z;
  const double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const double half = z / (1 + z2 / n) * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n));
  return {p, std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

}  // namespace nexus::fusion
