// The PNG encoder and the charts, read back by an independent decoder (libpng).
#include <png.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>

#include "nexus/chart/plot.hpp"
#include "nexus/chart/png.hpp"

namespace {

struct decoded {
  std::int64_t width = 0, height = 0;
  std::vector<std::uint8_t> rgb;
};

decoded decode(std::span<const unsigned char> bytes) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  REQUIRE(png_image_begin_read_from_memory(&img, bytes.data(), bytes.size()) != 0);
  img.format = PNG_FORMAT_RGB;
  decoded d{img.width, img.height, std::vector<std::uint8_t>(PNG_IMAGE_SIZE(img))};
  REQUIRE(png_image_finish_read(&img, nullptr, d.rgb.data(), 0, nullptr) != 0);
  return d;
}

decoded decode_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), {});
  return decode(bytes);
}

std::filesystem::path temp_png(const char* name) {
  return std::filesystem::temp_directory_path() / (std::string("nexus-test-") + name + ".png");
}

}  // namespace

TEST_CASE("png: libpng decodes what we encode, pixel for pixel", "[png]") {
  std::mt19937 rng(7);
  for (const auto& [w, h] : {std::pair{1, 1}, {37, 23}, {300, 2}}) {
    std::vector<std::uint8_t> rgb(std::size_t(w) * h * 3);
    for (auto& v : rgb) v = std::uint8_t(rng());
    for (std::size_t i = 0; i < rgb.size() / 2; ++i) rgb[i] = 17;  // runs, which the Up filter zeroes
    const auto d = decode(nexus::chart::encode_png(w, h, rgb));
    CHECK(d.width == w);
    CHECK(d.height == h);
    CHECK(d.rgb == rgb);
  }
}

TEST_CASE("png: wrong sizes are usage errors", "[png]") {
  std::vector<std::uint8_t> rgb(12);
  CHECK_THROWS_AS(nexus::chart::encode_png(2, 3, rgb), nexus::usage_error);
  CHECK_THROWS_AS(nexus::chart::encode_png(0, 4, rgb), nexus::usage_error);
  CHECK_THROWS_AS(nexus::chart::write_png("/no-such-dir/x.png", 2, 2, rgb), nexus::io_error);
}

TEST_CASE("plot: a heat map shows each cell in its colour", "[png]") {
  namespace plot = nexus::chart;
  plot::heat_map_spec s;
  s.title = "test";
  s.row_names = {"a", "b"};
  s.col_names = {"0", "1", "2"};
  s.values = {0.0, 0.5, 1.0, NAN, 0.25, 0.75};
  s.annotate = false;
  const auto path = temp_png("heat");
  plot::heat_map(path, s);
  const auto d = decode_file(path);
  // Find the grid: the first pixel of viridis(0) (cell (0,0)), then read every cell at its centre.
  const auto first = plot::viridis(0.0);
  std::int64_t x0 = -1, y0 = -1;
  for (std::int64_t y = 0; y < d.height && x0 < 0; ++y)
    for (std::int64_t x = 0; x < d.width; ++x) {
      const auto* p = &d.rgb[std::size_t((y * d.width + x) * 3)];
      if (p[0] == first.r && p[1] == first.g && p[2] == first.b) {
        x0 = x, y0 = y;
        break;
      }
    }
  REQUIRE(x0 >= 0);
  const int cell = std::clamp(720 / 3, 8, 48);
  for (int r = 0; r < 2; ++r)
    for (int k = 0; k < 3; ++k) {
      const double v = s.values[std::size_t(r * 3 + k)];
      const auto want = std::isfinite(v) ? plot::viridis(v) : plot::grey;
      const auto* p = &d.rgb[std::size_t(((y0 + r * cell + cell / 2) * d.width + x0 + k * cell + cell / 2) * 3)];
      CHECK(int(p[0]) == want.r);
      CHECK(int(p[1]) == want.g);
      CHECK(int(p[2]) == want.b);
    }
  std::filesystem::remove(path);
  s.values.pop_back();
  CHECK_THROWS_AS(plot::heat_map(path, s), nexus::usage_error);
}

TEST_CASE("plot: a line chart draws its series", "[png]") {
  namespace plot = nexus::chart;
  plot::line_chart_spec s{
      "loss", "step", "loss", {{"train", {0, 1, 2, 3}, {4, 3, 2.5, 2}}, {"held-out", {0, 3}, {4.2, 2.4}}}};
  const auto path = temp_png("line");
  plot::line_chart(path, s);
  const auto d = decode_file(path);
  std::size_t seen[2] = {0, 0};
  for (std::size_t i = 0; i + 2 < d.rgb.size(); i += 3)
    for (std::size_t k = 0; k < 2; ++k) {
      const auto c = plot::series_colour(k);
      seen[k] += d.rgb[i] == c.r && d.rgb[i + 1] == c.g && d.rgb[i + 2] == c.b;
    }
  CHECK(seen[0] > 100);  // lines two pixels wide across most of the plot
  CHECK(seen[1] > 100);
  std::filesystem::remove(path);
  s.series[0].y.pop_back();
  CHECK_THROWS_AS(plot::line_chart(path, s), nexus::usage_error);
}
