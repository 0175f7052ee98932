// Binding a checkpoint to an architecture: which checkpoint tensor holds which canonical tensor,
// and everything that does not fit (missing, mis-shaped, unused). `nexus inspect --check` and the
// model loaders both start here.
#pragma once

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "nexus/arch/tensors.hpp"
#include "nexus/io/checkpoint.hpp"
#include "nexus/registry/family.hpp"

namespace nexus::registry {

/// One checkpoint tensor the architecture expects.
struct expected_tensor {
  std::string name;                  // checkpoint name (with the family's base prefix)
  std::vector<std::string> targets;  // canonical names it holds, in order
  tensor_layout layout = tensor_layout::same;
  shape_t shape;                     // the shape the checkpoint must have
  std::vector<std::string> aliases;  // other names a checkpoint may store it under (family renames)
};

/// Shape a checkpoint tensor has when it holds `targets` in `layout`.
inline shape_t stored_shape(tensor_layout layout, const std::vector<shape_t>& targets) {
  shape_t s = targets.front();
  std::int64_t rows = 0;
  for (const auto& t : targets) rows += t[0];
  switch (layout) {
    case tensor_layout::same:
    case tensor_layout::rope_pairs_rows:
    case tensor_layout::plus_one: return s;
    case tensor_layout::transposed: return s.size() == 2 ? shape_t{s[1], s[0]} : s;
    case tensor_layout::fused_rows:
    case tensor_layout::fused_rows_per_head:
    case tensor_layout::fused_rows_per_kv_group: s[0] = rows; return s;
    case tensor_layout::fused_cols_transposed:
      if (s.size() == 2) return {s[1], rows};
      return {rows};                             // its bias is simply stacked
    case tensor_layout::experts_rows: return s;  // stacked_experts_shape: needs the expert count
  }
  return s;
}

inline std::string substitute_layer(std::string_view pattern, std::int64_t layer, std::string_view key = "{L}") {
  std::string s(pattern);
  if (const auto at = s.find(key); at != std::string::npos) s.replace(at, key.size(), std::to_string(layer));
  return s;
}
inline std::string substitute_expert(std::string_view pattern, std::int64_t expert) {
  return substitute_layer(pattern, expert, "{E}");
}

/// Shape of a tensor holding every expert's `per_expert` targets (one expert's shapes) in the experts_rows layout.
inline shape_t stacked_experts_shape(std::int64_t experts, const std::vector<shape_t>& per_expert) {
  std::int64_t rows = 0;
  for (const auto& t : per_expert) rows += t[0];
  return per_expert.front().size() == 2 ? shape_t{experts, rows, per_expert.front()[1]} : shape_t{experts, rows};
}

/// How a checkpoint format names a family's tensors: its Hugging Face names or llama.cpp's GGUF names.
struct tensor_naming {
  std::string_view model_type;  // for errors
  std::span<const tensor_rule> tensors;
  std::string_view base_prefix;
  std::span<const std::string_view> ignored_suffixes;
  std::span<const prefix_rename> renames;
  std::span<const std::string_view> ignored_prefixes;
};
inline tensor_naming hf_naming(const family& f) {
  return {f.model_type, f.tensors, f.base_prefix, f.ignored_suffixes, f.renames, f.ignored_prefixes};
}
inline tensor_naming gguf_naming(const family& f) {
  if (!f.gguf) throw unsupported_error(std::string(f.model_type), "llama.cpp writes no GGUF files for this family");
  return {f.model_type, f.gguf->tensors, "", {}, {}, {}};
}

/// The names a table name is stored under through the naming's renames, transformers' own first
/// (the table name itself where no rename applies).
inline std::vector<std::string> stored_names(const tensor_naming& fam, const std::string& table_name) {
  std::vector<std::string> out;
  for (const auto& r : fam.renames)
    if (table_name.starts_with(r.table)) out.push_back(std::string(r.stored) + table_name.substr(r.table.size()));
  if (out.empty()) out.push_back(table_name);
  return out;
}

/// Every checkpoint tensor a descriptor needs under a naming. Throws if the naming's table leaves a canonical
/// tensor without a source (a bug in the table, caught by the tests).
inline std::vector<expected_tensor> expected_tensors(const tensor_naming& fam, const descriptor& n) {
  const auto canonical = canonical_tensors(n);
  std::set<std::string> covered;
  std::vector<expected_tensor> out;
  for (const auto& rule : fam.tensors) {
    const bool per_layer = rule.checkpoint.find("{L}") != std::string_view::npos;
    const bool per_expert = rule.checkpoint.find("{E}") != std::string_view::npos;
    const bool stacked = !per_expert && std::any_of(rule.targets.begin(), rule.targets.end(), [](std::string_view t) {
      return t.find("{E}") != std::string_view::npos;
    });
    const std::int64_t experts = n.moe.num_experts;
    const auto targets_per_copy =
        std::count_if(rule.targets.begin(), rule.targets.end(), [](auto t) { return !t.empty(); });
    for (std::int64_t l = 0; l < (per_layer ? n.dims.num_layers : 1); ++l) {
      for (std::int64_t x = 0; x < (per_expert ? experts : 1); ++x) {
        for (const char* param : {".weight", ".bias"}) {
          auto names = stored_names(fam, substitute_expert(substitute_layer(rule.checkpoint, l), x) + param);
          expected_tensor e{names.front(), {}, rule.layout, {}, {names.begin() + 1, names.end()}};
          if (!rule.alias.empty()) e.aliases.push_back(substitute_expert(substitute_layer(rule.alias, l), x) + param);
          std::vector<shape_t> shapes;
          for (std::int64_t each = 0; each < (stacked ? experts : 1); ++each)
            for (const auto& t : rule.targets) {
              if (t.empty()) continue;
              const auto name = substitute_expert(substitute_layer(t, l), stacked ? each : x) + param;
              if (const auto it = canonical.find(name); it != canonical.end()) {
                e.targets.push_back(name);
                shapes.push_back(it->second);
              }
            }
          if (e.targets.empty()) continue;
          if (std::ptrdiff_t(e.targets.size()) != targets_per_copy * (stacked ? experts : 1))
            throw checkpoint_error(
                e.name, "family '" + std::string(fam.model_type) + "': fused tensor holds only some of its targets");
          e.shape = stacked ? stacked_experts_shape(experts, {shapes.begin(), shapes.begin() + targets_per_copy})
                            : stored_shape(rule.layout, shapes);
          covered.insert(e.targets.begin(), e.targets.end());
          out.push_back(std::move(e));
        }
      }
    }
  }
  for (const auto& [name, shape] : canonical)
    if (!covered.count(name))
      throw checkpoint_error(
          name, "family '" + std::string(fam.model_type) + "' has no checkpoint name for this canonical tensor");
  return out;
}
inline std::vector<expected_tensor> expected_tensors(const family& fam, const descriptor& n) {
  return expected_tensors(hf_naming(fam), n);
}

/// How a checkpoint matched what the architecture expects.
struct binding {
  struct bound {
    expected_tensor expected;
    tensor_view tensor;
  };
  std::vector<bound> tensors;           // found with the right shape
  std::vector<std::string> missing;     // expected, absent
  std::vector<std::string> mis_shaped;  // "name: checkpoint [..], expected [..]"
  std::vector<std::string> unused;      // present, consumed by nothing
  std::vector<std::string> ignored;     // present, known not to be weights (buffers, tied copies)

  bool complete() const { return missing.empty() && mis_shaped.empty() && unused.empty(); }
  /// One line per problem, at most `limit` lines.
  std::string report(std::size_t limit = 8) const {
    std::vector<std::string> lines;
    for (const auto& m : missing) lines.push_back("missing tensor " + m);
    for (const auto& m : mis_shaped) lines.push_back("wrong shape " + m);
    for (const auto& u : unused) lines.push_back("unused tensor " + u);
    std::string out;
    for (std::size_t i = 0; i < lines.size() && i < limit; ++i) out += (i ? "; " : "") + lines[i];
    if (lines.size() > limit) out += "; and " + std::to_string(lines.size() - limit) + " more";
    return out;
  }
};

inline std::string shape_text(const shape_t& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

inline binding bind(const tensor_naming& fam, const descriptor& n, const checkpoint& ckpt) {
  binding b;
  std::set<std::string> consumed;
  const std::string prefix(fam.base_prefix);
  auto lookup = [&](const std::string& name) -> std::string {
    if (ckpt.contains(name)) return name;
    if (!prefix.empty() && name.rfind(prefix, 0) == 0 && ckpt.contains(name.substr(prefix.size())))
      return name.substr(prefix.size());
    return {};
  };
  auto lookup_any = [&](const std::vector<std::string>& names) -> std::string {
    for (const auto& name : names)
      if (auto found = lookup(name); !found.empty()) return found;
    return {};
  };
  for (auto& e : expected_tensors(fam, n)) {
    std::vector<std::string> names{e.name};
    names.insert(names.end(), e.aliases.begin(), e.aliases.end());
    const auto found = lookup_any(names);
    if (found.empty()) {
      b.missing.push_back(e.name);
      continue;
    }
    consumed.insert(found);
    auto t = ckpt.tensor(found);
    if (t.shape != e.shape)
      b.mis_shaped.push_back(found + ": checkpoint " + shape_text(t.shape) + ", expected " + shape_text(e.shape));
    else b.tensors.push_back({std::move(e), std::move(t)});
  }
  // A tied model's checkpoint may still carry the head: a copy, not a weight of its own.
  std::string tied_head;
  if (n.embedding.tied)
    for (const auto& rule : fam.tensors)
      if (rule.targets[0] == "lm_head")
        tied_head = lookup_any(stored_names(fam, std::string(rule.checkpoint) + ".weight"));
  for (const auto& t : ckpt.tensors()) {
    if (consumed.count(t.name)) continue;
    const bool buffer = std::any_of(fam.ignored_suffixes.begin(), fam.ignored_suffixes.end(),
                                    [&](std::string_view s) { return t.name.ends_with(s); });
    const bool other_part = std::any_of(fam.ignored_prefixes.begin(), fam.ignored_prefixes.end(),
                                        [&](std::string_view s) { return t.name.starts_with(s); });
    (buffer || other_part || t.name == tied_head ? b.ignored : b.unused).push_back(t.name);
  }
  return b;
}

/// A family's checkpoint under the naming of its format (Hugging Face safetensors or GGUF).
inline binding bind(const family& fam, const descriptor& n, const checkpoint& ckpt) {
  return bind(ckpt.gguf_file() ? gguf_naming(fam) : hf_naming(fam), n, ckpt);
}

}  // namespace nexus::registry
