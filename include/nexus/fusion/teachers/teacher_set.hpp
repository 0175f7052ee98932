// Several teachers side by side under a memory budget. Each teacher is a checkpoint folder or .gguf
// file with its own tokenizer; its weights load when first used and the least recently used ones are
// evicted so that the resident weights never exceed the budget. Descriptors and tokenizers (small)
// are read up front, so a set that cannot work fails before any weights load. The set holds models
// through the backend-neutral `model` interface; a teacher_loader says how one is loaded and what it
// holds resident (the CPU backend unless another is given).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nexus/arch/tensors.hpp"
#include "nexus/backend/cpu/model.hpp"
#include "nexus/core/error.hpp"
#include "nexus/core/log.hpp"
#include "nexus/tokenizer/tokenizer.hpp"

namespace nexus::fusion {

/// Bytes the CPU model holds for a checkpoint's weights (load_cpu_model): in their stored format,
/// the bytes of the bound tensors (views of the mapped file or same-sized copies); widened to fp32,
/// 4 bytes per canonical element.
inline std::uint64_t cpu_weight_bytes(const registry::opened_checkpoint& o, const cpu_options& options) {
  std::uint64_t bytes = 0;
  switch (options.precision) {
    case weight_precision::stored:
      for (const auto& b : o.bound.tensors) bytes += b.tensor.data.size();
      return bytes;
    case weight_precision::fp32:
      for (const auto& [name, shape] : canonical_tensors(o.arch)) {
        std::uint64_t e = sizeof(float);
        for (const auto d : shape) e *= std::uint64_t(d);
        bytes += e;
      }
      return bytes;
  }
  throw usage_error("cpu_options", "unknown weight precision");
}

/// "1.5GiB", "64MiB", "300MB", "4096" (bytes); KiB/MiB/GiB are powers of 1024, kB/MB/GB of 1000.
inline std::uint64_t parse_bytes(const std::string& text) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string unit = text.substr(used);
  static const std::pair<const char*, double> units[] = {{"", 1},          {"B", 1},         {"KiB", 1024.0},
                                                         {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"kB", 1e3},
                                                         {"KB", 1e3},      {"MB", 1e6},      {"GB", 1e9}};
  for (const auto& [name, scale] : units)
    if (used > 0 && unit == name && v >= 0 && std::isfinite(v)) return std::uint64_t(std::llround(v * scale));
  throw usage_error("size", "'" + text + "' is not a size (e.g. 4096, 64MiB, 1.5GiB, 300MB)");
}

inline std::string format_bytes(std::uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", double(b) / double(1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", double(b) / double(1ull << 20));
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

/// How a teacher set loads a checkpoint, and the bytes its weights hold once loaded (for the budget).
struct teacher_loader {
  std::function<std::unique_ptr<model>(const std::filesystem::path&)> load;
  std::function<std::uint64_t(const registry::opened_checkpoint&)> weight_bytes;
};

/// Teachers on the CPU (load_cpu_model with `options`).
inline teacher_loader cpu_teachers(cpu_options options = {}) {
  return {[options](const std::filesystem::path& p) -> std::unique_ptr<model> { return load_cpu_model(p, options); },
          [options](const registry::opened_checkpoint& o) { return cpu_weight_bytes(o, options); }};
}

struct teacher_info {
  std::string name;            // the file or folder name; unique in the set
  std::filesystem::path path;  // checkpoint folder or .gguf file
  descriptor arch;
  std::uint64_t weight_bytes = 0;  // resident bytes of its weights once loaded (teacher_loader::weight_bytes)
};

class teacher_set {
 public:
  /// `budget`: the most bytes of weights resident at once; 0 means no limit. A teacher whose
  /// weights alone exceed the budget is a budget_error here, before anything loads.
  teacher_set(const std::vector<std::filesystem::path>& paths, std::uint64_t budget, teacher_loader loader)
      : budget_(budget), loader_(std::move(loader)) {
    if (paths.empty()) throw usage_error("teacher_set", "no teachers given");
    for (const auto& p : paths) {
      teacher t;
      auto norm = p.lexically_normal();
      if (norm.filename().empty()) norm = norm.parent_path();
      t.info.name = norm.filename().string();
      for (const auto& o : teachers_)
        if (o.info.name == t.info.name) t.info.name += "#" + std::to_string(teachers_.size());
      t.info.path = p;
      const auto opened = registry::open_checkpoint(p);  // maps the weights; reads only headers
      t.info.arch = opened.arch;
      t.info.weight_bytes = loader_.weight_bytes(opened);
      if (budget_ > 0 && t.info.weight_bytes > budget_)
        throw budget_error(p.string(), "its weights need " + format_bytes(t.info.weight_bytes) +
                                           ", more than the whole budget of " + format_bytes(budget_));
      t.tok = std::make_unique<tokenizer>(tokenizer::load(p));
      teachers_.push_back(std::move(t));
    }
  }
  /// Teachers on the CPU.
  teacher_set(const std::vector<std::filesystem::path>& paths, std::uint64_t budget, cpu_options options = {})
      : teacher_set(paths, budget, cpu_teachers(options)) {}

  std::size_t size() const noexcept { return teachers_.size(); }
  const teacher_info& info(std::size_t i) const { return teachers_.at(i).info; }
  const tokenizer& tok(std::size_t i) const { return *teachers_.at(i).tok; }
  std::uint64_t budget() const noexcept { return budget_; }

  /// Teacher i's model, loaded if it is not resident; least recently used teachers are evicted
  /// first until it fits. The reference stays valid until a later get() evicts it.
  const model& get(std::size_t i) {
    auto& t = teachers_.at(i);
    ++t.uses;
    if (!t.loaded) {
      while (budget_ > 0 && resident_bytes() + t.info.weight_bytes > budget_) evict(lru_.front());
      t.loaded = loader_.load(t.info.path);
      ++loads_;
      log::info("teacher '{}' loaded ({}); {}", t.info.name, format_bytes(t.info.weight_bytes), report());
    }
    lru_.erase(std::remove(lru_.begin(), lru_.end(), i), lru_.end());
    lru_.push_back(i);
    return *t.loaded;
  }

  /// Resident teachers, least recently used first.
  const std::vector<std::size_t>& resident() const noexcept { return lru_; }
  std::uint64_t resident_bytes() const {
    std::uint64_t sum = 0;
    for (const auto i : lru_) sum += teachers_[i].info.weight_bytes;
    return sum;
  }
  /// Loads so far (a teacher evicted and used again counts twice).
  std::size_t loads() const noexcept { return loads_; }
  /// Calls of get(i) so far: every run of teacher i asks for its model first.
  std::size_t uses(std::size_t i) const { return teachers_.at(i).uses; }
  void evict(std::size_t i) {
    if (teachers_.at(i).loaded)
      log::info("teacher '{}' evicted (budget {})", teachers_[i].info.name, format_bytes(budget_));
    teachers_.at(i).loaded.reset();
    lru_.erase(std::remove(lru_.begin(), lru_.end(), i), lru_.end());
  }
  /// One line: "resident: A (1.2 MiB), B (...) of budget X".
  std::string report() const {
    std::string s = "resident:";
    for (const auto i : lru_)
      s += " " + teachers_[i].info.name + " (" + format_bytes(teachers_[i].info.weight_bytes) + ")";
    if (lru_.empty()) s += " none";
    return s + "; " + format_bytes(resident_bytes()) + " of " + (budget_ ? format_bytes(budget_) : "no budget");
  }

 private:
  struct teacher {
    teacher_info info;
    std::unique_ptr<tokenizer> tok;
    std::unique_ptr<nexus::model> loaded;
    std::size_t uses = 0;
  };
  std::vector<teacher> teachers_;
  std::vector<std::size_t> lru_;
  std::uint64_t budget_;
  teacher_loader loader_;
  std::size_t loads_ = 0;
};

}  // namespace nexus::fusion
