// Writes an 8-bit RGB image as a PNG file (zlib does the compression; the chunks and their CRCs
// follow the PNG specification, section 5). Used for charts and heat maps (plot.hpp); nothing reads PNG.
// Part of nexus::chart (tools/chart), not of the nexus::nexus library: only it needs zlib.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "nexus/core/error.hpp"

namespace nexus::chart {

namespace detail {
inline void put_u32_be(std::vector<unsigned char>& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(v >> s));
}
/// One chunk: length, type, data, CRC over type and data.
inline void put_chunk(std::vector<unsigned char>& out, const char (&type)[5], std::span<const unsigned char> data) {
  put_u32_be(out, static_cast<std::uint32_t>(data.size()));
  const auto at = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  const auto crc = ::crc32(0L, out.data() + at, static_cast<uInt>(out.size() - at));
  put_u32_be(out, static_cast<std::uint32_t>(crc));
}
}  // namespace detail

/// The PNG encoding of a `width` x `height` image, `rgb` holding 3 bytes per pixel, rows top first.
inline std::vector<unsigned char> encode_png(std::int64_t width, std::int64_t height,
                                             std::span<const std::uint8_t> rgb) {
  if (width <= 0 || height <= 0 || width > (1 << 24) || height > (1 << 24))
    throw usage_error("png", "image of " + std::to_string(width) + " x " + std::to_string(height) + " pixels");
  const auto row = std::size_t(width) * 3;
  if (rgb.size() != row * std::size_t(height))
    throw usage_error("png", std::to_string(rgb.size()) + " bytes for a " + std::to_string(width) + " x " +
                                 std::to_string(height) + " RGB image (" + std::to_string(row * height) + " needed)");
  // Each row is preceded by its filter type; "Up" (2) turns the repeated rows of a chart into zeros.
  std::vector<unsigned char> raw;
  raw.reserve((row + 1) * std::size_t(height));
  for (std::int64_t y = 0; y < height; ++y) {
    const auto* cur = rgb.data() + std::size_t(y) * row;
    raw.push_back(y == 0 ? 0 : 2);
    for (std::size_t i = 0; i < row; ++i)
      raw.push_back(static_cast<unsigned char>(y == 0 ? cur[i] : cur[i] - cur[i - row]));
  }
  uLongf packed_size = ::compressBound(static_cast<uLong>(raw.size()));
  std::vector<unsigned char> packed(packed_size);
  if (::compress2(packed.data(), &packed_size, raw.data(), static_cast<uLong>(raw.size()), 9) != Z_OK)
    throw usage_error("png", "zlib could not compress the image");
  packed.resize(packed_size);

  std::vector<unsigned char> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<unsigned char> header;
  detail::put_u32_be(header, static_cast<std::uint32_t>(width));
  detail::put_u32_be(header, static_cast<std::uint32_t>(height));
  header.insert(header.end(), {8, 2, 0, 0, 0});  // 8 bits per sample, RGB, deflate, adaptive filters, no interlace
  detail::put_chunk(out, "IHDR", header);
  detail::put_chunk(out, "IDAT", packed);
  detail::put_chunk(out, "IEND", {});
  return out;
}

/// Writes the image to `path` (io_error when it cannot).
inline void write_png(const std::filesystem::path& path, std::int64_t width, std::int64_t height,
                      std::span<const std::uint8_t> rgb) {
  const auto bytes = encode_png(width, height, rgb);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!out.flush()) throw io_error(path.string(), "cannot write the PNG file");
}

}  // namespace nexus::chart
