// What the registry knows about one architecture family: how its config.json becomes a
// descriptor, and how its checkpoint tensor names map onto the canonical tensors.
#pragma once

#include <algorithm>
#include <array>
#include <span>
#include <string_view>

#include "nexus/arch/descriptor.hpp"
#include "nexus/registry/config_reader.hpp"

namespace nexus {

/// How a checkpoint tensor holds its canonical tensor(s). Fused layouts list several targets.
#define NEXUS_TENSOR_LAYOUTS(X)                                                                  \
  X(same)                  /* identical shape and layout */                                      \
  X(transposed)            /* GPT-2 Conv1D: stored [in, out] */                                  \
  X(fused_rows)            /* targets stacked along dim 0 (Phi-3 qkv_proj, gate_up_proj) */      \
  X(fused_rows_per_head)   /* per head [q_h; k_h; v_h] along dim 0 (GPT-NeoX query_key_value) */ \
  X(fused_cols_transposed) /* Conv1D of stacked targets: stored [in, sum(out)] (GPT-2 c_attn) */
enum class tensor_layout : std::uint8_t { NEXUS_TENSOR_LAYOUTS(NEXUS_ENUM_VALUE_) };
NEXUS_ENUM_TABLE(tensor_layout, NEXUS_TENSOR_LAYOUTS);

/// One checkpoint module ("model.layers.{L}.self_attn.q_proj") and the canonical module(s) it
/// holds ("layers.{L}.attn.q"). Its ".weight" and ".bias" map to the targets' ".weight"/".bias".
struct tensor_rule {
  std::string_view checkpoint;
  std::array<std::string_view, 3> targets;  // unused slots empty
  tensor_layout layout = tensor_layout::same;
};

/// Tables are composed from shared fragments (many families reuse Llama's module names).
template <std::size_t... N>
constexpr auto concat(const std::array<tensor_rule, N>&... parts) {
  std::array<tensor_rule, (N + ...)> out{};
  std::size_t at = 0;
  ((std::copy(parts.begin(), parts.end(), out.begin() + std::ptrdiff_t(at)), at += N), ...);
  return out;
}

struct family {
  std::string_view model_type;  // config.json "model_type"
  descriptor (*parse)(const config_reader&);
  std::span<const tensor_rule> tensors;
  std::string_view base_prefix;  // may be missing from checkpoints saved without the LM head wrapper
  std::span<const std::string_view> ignored_suffixes;  // buffers some checkpoints carry (causal masks, inv_freq)
};

}  // namespace nexus
