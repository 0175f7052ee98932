// The kinds of bridge, listed once. A kind is one file under kinds/ (a policy struct: see
// parameters.hpp for what it supplies, the CPU path and the device composition both in it) plus one
// line in NEXUS_BRIDGE_KINDS below (with its #include); the lookup by name comes from that line.
#pragma once

#include <string>
#include <string_view>

#include "nexus/core/error.hpp"
#include "nexus/fusion/bridges/kinds/attention_pool.hpp"
#include "nexus/fusion/bridges/kinds/gated_adapter.hpp"
#include "nexus/fusion/bridges/kinds/linear.hpp"
#include "nexus/fusion/bridges/kinds/lora.hpp"
#include "nexus/fusion/bridges/kinds/mlp.hpp"
#include "nexus/fusion/bridges/kinds/perceiver.hpp"

#define NEXUS_BRIDGE_KINDS(X) \
  X(linear_kind)              \
  X(mlp_kind)                 \
  X(attention_pool_kind)      \
  X(perceiver_kind)           \
  X(gated_adapter_kind)       \
  X(lora_kind)

namespace nexus::fusion {

/// Calls f(Kind{}) for the kind named `name` (the CLI's --kind, a file's metadata).
template <class F>
decltype(auto) with_bridge_kind(std::string_view name, F&& f) {
#define NEXUS_BRIDGE_KIND_CASE_(kind) \
  if (name == kind::name) return f(kind{});
  NEXUS_BRIDGE_KINDS(NEXUS_BRIDGE_KIND_CASE_)
#undef NEXUS_BRIDGE_KIND_CASE_
  std::string known;
#define NEXUS_BRIDGE_KIND_NAME_(kind) known += std::string(known.empty() ? "" : ", ") + std::string(kind::name);
  NEXUS_BRIDGE_KINDS(NEXUS_BRIDGE_KIND_NAME_)
#undef NEXUS_BRIDGE_KIND_NAME_
  throw usage_error("bridge kind", "'" + std::string(name) + "' is not a kind (" + known + ")");
}

}  // namespace nexus::fusion
