// libFuzzer: any text given to the bundle manifest parser either parses into a manifest, whose JSON
// parses back to the same manifest, or raises bundle_error. Nothing else: no crash, no other throw.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "nexus/fusion/system/bundle.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto m = nexus::fusion::parse_bundle_manifest(text, "fuzz");
    if (!(nexus::fusion::parse_bundle_manifest(nexus::fusion::to_json(m).dump(), "fuzz") == m)) std::abort();
  } catch (const nexus::bundle_error&) {}
  return 0;
}
