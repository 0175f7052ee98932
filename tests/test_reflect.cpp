// Reflection of the descriptor: names, flattening, JSON round trip, hashing and diff.
#include <catch2/catch.hpp>

#include "nexus/arch/descriptor.hpp"

using namespace nexus;

TEST_CASE("field names come from the declarations") {
  constexpr auto names = reflect::field_names<dims_desc>();
  STATIC_REQUIRE(names.size() == 8);
  CHECK(names[0] == "vocab_size");
  CHECK(names[5] == "head_dim");
  constexpr auto top = reflect::field_names<descriptor>();
  CHECK(top[1] == "dims");
  CHECK(top[6] == "moe");
  CHECK(top[7] == "residual");
}

TEST_CASE("flatten lists every leaf with a dotted path") {
  descriptor n;
  n.attention.layers = {layer_attention::sliding, layer_attention::full, layer_attention::full};
  const auto rows = reflect::flatten(n);
  auto value = [&](const std::string& path) {
    for (const auto& [p, v] : rows)
      if (p == path) return v;
    FAIL("no row " << path);
    return std::string();
  };
  CHECK(value("norm.kind") == "rms");
  CHECK(value("attention.layers") == "[sliding,full×2]");
  CHECK(value("position.scaling.type") == "none");
  CHECK(value("embedding.tied") == "false");
}

TEST_CASE("JSON round trip, equality and hash") {
  descriptor a;
  a.family = "x";
  a.dims.hidden_size = 64;
  a.norm.kind = norm_kind::layer;
  a.position.scaling.short_factor = {1.0, 1.5};
  a.attention.layers = {layer_attention::sliding};
  descriptor b;
  reflect::from_json(nlohmann::json::parse(reflect::to_json(a).dump()), b);
  CHECK(a == b);
  CHECK(std::hash<descriptor>{}(a) == std::hash<descriptor>{}(b));
  b.norm.unit_offset = true;
  CHECK_FALSE(a == b);
  CHECK(std::hash<descriptor>{}(a) != std::hash<descriptor>{}(b));
  CHECK(reflect::diff(a, b) == std::vector<std::string>{"norm.unit_offset"});
}

TEST_CASE("JSON with a wrong type or unknown enum name is rejected with its path") {
  descriptor n;
  CHECK_THROWS_WITH(reflect::from_json(nlohmann::json::parse(R"({"norm":{"kind":"batch"}})"), n),
                    Catch::Contains("norm.kind") && Catch::Contains("rms, layer"));
  CHECK_THROWS_WITH(reflect::from_json(nlohmann::json::parse(R"({"dims":{"hidden_size":"64"}})"), n),
                    Catch::Contains("dims.hidden_size"));
}
