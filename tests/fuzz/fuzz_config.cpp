// libFuzzer: any config.json either becomes a descriptor whose tensors and rope frequencies can
// be derived, or raises a nexus::error. Nothing else: no crash, no hang, no other throw.
#include <cstdint>

#include "nexus/arch/rope.hpp"
#include "nexus/registry/binding.hpp"
#include "nexus/registry/registry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    const auto n = nexus::registry::describe(j, "fuzz");
    const auto& fam = nexus::registry::find_family(nexus::config_reader(j, "fuzz"));
    (void)nexus::registry::expected_tensors(fam, n);
    (void)nexus::reflect::to_json(n);
    if (n.position.kind == nexus::position_kind::rope)
      for (const auto kind : {nexus::layer_attention::full, nexus::layer_attention::sliding})
        (void)nexus::rope_inv_freq(nexus::rope_for(n.position, kind), n.dims.max_positions + 1);
  } catch (const nexus::error&) {}
  return 0;
}
