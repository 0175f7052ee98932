// Charts the nexus command and the benchmarks write as PNG: a heat map (layer x layer maps) and a
// line chart (loss curves). A small raster canvas with a 5x7 bitmap font, so the charts carry their
// titles, axes and tick labels without a plotting library. Letters print in capitals.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "nexus/chart/png.hpp"

namespace nexus::chart {

struct rgb {
  std::uint8_t r = 0, g = 0, b = 0;
};
inline constexpr rgb white{255, 255, 255}, black{0, 0, 0}, grey{200, 200, 200}, dark_grey{90, 90, 90};

/// Distinct colours for the series of a line chart (Tableau 10).
inline rgb series_colour(std::size_t i) {
  static constexpr std::array<rgb, 10> c = {{{31, 119, 180},
                                             {255, 127, 14},
                                             {44, 160, 44},
                                             {214, 39, 40},
                                             {148, 103, 189},
                                             {140, 86, 75},
                                             {227, 119, 194},
                                             {127, 127, 127},
                                             {188, 189, 34},
                                             {23, 190, 207}}};
  return c[i % c.size()];
}

/// Viridis, piecewise linear through five of its colours; t in [0, 1].
inline rgb viridis(double t) {
  static constexpr std::array<std::array<double, 3>, 5> a = {
      {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}}};
  t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0) * 4;
  const auto i = std::min<std::size_t>(std::size_t(t), 3);
  const double f = t - double(i);
  auto mix = [&](int k) { return std::uint8_t(std::lround(a[i][k] + f * (a[i + 1][k] - a[i][k]))); };
  return {mix(0), mix(1), mix(2)};
}

namespace detail {
/// 5x7 glyphs, one byte per row (bit 4 leftmost), for digits, capitals and the punctuation charts use.
inline const std::array<std::uint8_t, 7>& glyph(char c) {
  struct entry {
    char c;
    std::array<std::uint8_t, 7> rows;
  };
  static const entry font[] = {
      {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
      {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
      {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
      {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
      {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
      {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
      {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
      {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
      {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
      {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
      {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
      {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
      {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
      {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
      {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
      {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
      {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
      {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
      {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}}, {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
      {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}}, {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
      {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}}, {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}},
      {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}}, {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
      {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}}, {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
      {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}}, {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
      {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}}, {' ', {0, 0, 0, 0, 0, 0, 0}},
  };
  static const std::array<std::uint8_t, 7> unknown = {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04};  // '?'
  if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  for (const auto& e : font)
    if (e.c == c) return e.rows;
  return unknown;
}
}  // namespace detail

/// An RGB raster, white to begin with.
class canvas {
 public:
  canvas(int width, int height) : w_(width), h_(height), px_(std::size_t(width) * std::size_t(height) * 3, 255) {}
  int width() const { return w_; }
  int height() const { return h_; }

  void set(int x, int y, rgb c) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
    auto* p = &px_[(std::size_t(y) * std::size_t(w_) + std::size_t(x)) * 3];
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
  }
  void fill(int x, int y, int w, int h, rgb c) {
    for (int j = y; j < y + h; ++j)
      for (int i = x; i < x + w; ++i) set(i, j, c);
  }
  /// A line `thickness` pixels wide (Bresenham, with a square pen).
  void line(int x0, int y0, int x1, int y1, rgb c, int thickness = 1) {
    const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
      fill(x0 - thickness / 2, y0 - thickness / 2, thickness, thickness, c);
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * err;
      if (e2 >= dy) err += dy, x0 += sx;
      if (e2 <= dx) err += dx, y0 += sy;
    }
  }
  static int text_width(const std::string& s, int scale = 1) { return int(s.size()) * 6 * scale - scale; }
  static int text_height(int scale = 1) { return 7 * scale; }
  /// Text with its top-left corner at (x, y).
  void text(int x, int y, const std::string& s, rgb c = black, int scale = 1) {
    for (const char ch : s) {
      const auto& g = detail::glyph(ch);
      for (int r = 0; r < 7; ++r)
        for (int b = 0; b < 5; ++b)
          if (g[std::size_t(r)] & (0x10 >> b)) fill(x + b * scale, y + r * scale, scale, scale, c);
      x += 6 * scale;
    }
  }
  /// Text written bottom to top, its top-left corner (once rotated) at (x, y).
  void text_up(int x, int y, const std::string& s, rgb c = black, int scale = 1) {
    const int len = text_width(s, scale);
    int at = 0;
    for (const char ch : s) {
      const auto& g = detail::glyph(ch);
      for (int r = 0; r < 7; ++r)
        for (int b = 0; b < 5; ++b)
          if (g[std::size_t(r)] & (0x10 >> b)) fill(x + r * scale, y + len - (at + b + 1) * scale, scale, scale, c);
      at += 6 * scale;
    }
  }
  void save(const std::filesystem::path& path) const { write_png(path, w_, h_, px_); }

 private:
  int w_, h_;
  std::vector<std::uint8_t> px_;
};

/// A readable label for a tick value.
inline std::string tick_label(double v) {
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 1e4 || a < 1e-3) return fmt::format("{:.1e}", v);
  return fmt::format("{:.4g}", v);
}

/// Ticks for [lo, hi]: multiples of 1, 2 or 5 times a power of ten, about `want` of them.
inline std::vector<double> nice_ticks(double lo, double hi, int want = 5) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / want, mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = raw / mag < 1.5 ? mag : raw / mag < 3.5 ? 2 * mag : raw / mag < 7.5 ? 5 * mag : 10 * mag;
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    t.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return t;
}

struct heat_map_spec {
  std::string title, row_label, col_label;
  std::vector<std::string> row_names, col_names;  // one per row / column of `values`
  std::vector<double> values;                     // rows x cols, row-major; NaN: no value (grey)
  double lo = 0, hi = 1;                          // the colour scale's range
  bool annotate = true;                           // print each cell's value when the cells are wide enough
};

/// A heat map with row 0 at the top, a colour bar on the right, written to `path`.
inline void heat_map(const std::filesystem::path& path, const heat_map_spec& s) {
  const int rows = int(s.row_names.size()), cols = int(s.col_names.size());
  if (rows == 0 || cols == 0 || s.values.size() != std::size_t(rows) * std::size_t(cols))
    throw usage_error("plot", "heat map of " + std::to_string(s.values.size()) + " values for " + std::to_string(rows) +
                                  " rows and " + std::to_string(cols) + " columns");
  const int cell = std::clamp(720 / std::max(rows, cols), 8, 48);
  std::size_t name_len = 0;
  for (const auto& n : s.row_names) name_len = std::max(name_len, n.size());
  const int left = 30 + int(name_len) * 6 + 8, top = 40, bar = 16;
  std::size_t col_len = 0;
  for (const auto& n : s.col_names) col_len = std::max(col_len, n.size());
  const int grid_w = cols * cell, grid_h = rows * cell;
  const int bottom = int(col_len) * 6 + 30;
  canvas c(left + grid_w + 30 + bar + 70, top + grid_h + bottom);
  c.text(left, 12, s.title, black, 2);
  for (int r = 0; r < rows; ++r) {
    for (int k = 0; k < cols; ++k) {
      const double v = s.values[std::size_t(r) * std::size_t(cols) + std::size_t(k)];
      const bool ok = std::isfinite(v);
      const double t = (v - s.lo) / (s.hi - s.lo);
      c.fill(left + k * cell, top + r * cell, cell - 1, cell - 1, ok ? viridis(t) : grey);
      const auto label = fmt::format("{:.2f}", v);
      if (ok && s.annotate && canvas::text_width(label) + 2 <= cell - 1 && cell >= 12)
        c.text(left + k * cell + (cell - canvas::text_width(label)) / 2, top + r * cell + (cell - 7) / 2, label,
               t > 0.6 ? black : white);
    }
    c.text(left - 6 - canvas::text_width(s.row_names[std::size_t(r)]), top + r * cell + (cell - 7) / 2,
           s.row_names[std::size_t(r)]);
  }
  for (int k = 0; k < cols; ++k)
    c.text_up(left + k * cell + (cell - 7) / 2, top + grid_h + 4, s.col_names[std::size_t(k)]);
  c.text(left + (grid_w - canvas::text_width(s.col_label)) / 2, top + grid_h + int(col_len) * 6 + 12, s.col_label);
  c.text_up(8, top + (grid_h - canvas::text_width(s.row_label)) / 2, s.row_label);
  // Colour bar with its ticks.
  const int bx = left + grid_w + 30;
  for (int y = 0; y < grid_h; ++y) c.fill(bx, top + y, bar, 1, viridis(1.0 - double(y) / std::max(1, grid_h - 1)));
  for (const double v : nice_ticks(s.lo, s.hi)) {
    const int y = top + int(std::lround((1.0 - (v - s.lo) / (s.hi - s.lo)) * (grid_h - 1)));
    c.line(bx + bar, y, bx + bar + 3, y, black);
    c.text(bx + bar + 6, y - 3, tick_label(v));
  }
  c.save(path);
}

struct line_series {
  std::string name;
  std::vector<double> x, y;  // equal lengths; non-finite points are skipped
};

struct line_chart_spec {
  std::string title, x_label, y_label;
  std::vector<line_series> series;
  bool log_y = false;  // a logarithmic y axis (positive values only)
};

/// A line chart of the series with axes, ticks and a legend, written to `path`.
inline void line_chart(const std::filesystem::path& path, const line_chart_spec& s) {
  const bool log_y = s.log_y;
  auto fy = [&](double v) { return log_y ? std::log10(v) : v; };
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& ser : s.series) {
    if (ser.x.size() != ser.y.size())
      throw usage_error("plot", "series '" + ser.name + "' has " + std::to_string(ser.x.size()) + " x and " +
                                    std::to_string(ser.y.size()) + " y values");
    for (std::size_t i = 0; i < ser.x.size(); ++i) {
      const double y = fy(ser.y[i]);
      if (!std::isfinite(ser.x[i]) || !std::isfinite(y)) continue;
      x0 = std::min(x0, ser.x[i]), x1 = std::max(x1, ser.x[i]), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  }
  if (!(x1 >= x0)) throw usage_error("plot", "line chart '" + s.title + "' has no finite points");
  if (x1 == x0) x0 -= 1, x1 += 1;
  if (y1 == y0) y0 -= 0.5, y1 += 0.5;
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  const int left = 80, top = 40, w = 720, h = 400, legend_h = int(s.series.size()) * 14 + 10;
  canvas c(left + w + 20, top + h + 50 + legend_h);
  c.text(left, 12, s.title, black, 2);
  auto px = [&](double x) { return left + int(std::lround((x - x0) / (x1 - x0) * (w - 1))); };
  auto py = [&](double y) { return top + int(std::lround((1.0 - (y - y0) / (y1 - y0)) * (h - 1))); };
  for (const double t : nice_ticks(y0, y1)) {
    c.line(left, py(t), left + w - 1, py(t), grey);
    const auto label = tick_label(log_y ? std::pow(10.0, t) : t);
    c.text(left - 6 - canvas::text_width(label), py(t) - 3, label);
  }
  for (const double t : nice_ticks(x0, x1, 8)) {
    c.line(px(t), top + h - 1, px(t), top + h + 3, black);
    const auto label = tick_label(t);
    c.text(px(t) - canvas::text_width(label) / 2, top + h + 6, label);
  }
  c.line(left, top, left, top + h - 1, black);
  c.line(left, top + h - 1, left + w - 1, top + h - 1, black);
  c.text(left + (w - canvas::text_width(s.x_label)) / 2, top + h + 20, s.x_label);
  c.text_up(8, top + (h - canvas::text_width(s.y_label)) / 2, s.y_label + (log_y ? " (LOG)" : ""));
  for (std::size_t k = 0; k < s.series.size(); ++k) {
    const auto& ser = s.series[k];
    const auto col = series_colour(k);
    bool have = false;
    int lx = 0, ly = 0;
    for (std::size_t i = 0; i < ser.x.size(); ++i) {
      const double y = fy(ser.y[i]);
      if (!std::isfinite(ser.x[i]) || !std::isfinite(y)) {
        have = false;
        continue;
      }
      const int X = px(ser.x[i]), Y = py(y);
      if (have) c.line(lx, ly, X, Y, col, 2);
      else c.fill(X - 1, Y - 1, 3, 3, col);
      lx = X, ly = Y, have = true;
    }
    const int ly_legend = top + h + 38 + int(k) * 14;
    c.fill(left, ly_legend + 2, 16, 3, col);
    c.text(left + 22, ly_legend, ser.name);
  }
  c.save(path);
}

/// One row of an interval chart: a point and its interval, coloured by series.
struct interval_row {
  std::string label;
  double point = 0, low = 0, high = 0;
  std::size_t series = 0;  // series_colour(series)
};

struct interval_chart_spec {
  std::string title, x_label;
  std::vector<interval_row> rows;         // drawn top to bottom
  std::vector<double> reference_lines;    // vertical lines (0, a margin), dashed grey
  std::vector<std::string> series_names;  // the legend, by series
};

/// A forest plot: each row's interval as a bar with its point marked, against vertical reference lines.
inline void interval_chart(const std::filesystem::path& path, const interval_chart_spec& s) {
  if (s.rows.empty()) throw usage_error("plot", "interval chart '" + s.title + "' has no rows");
  double x0 = INFINITY, x1 = -INFINITY;
  for (const auto& r : s.rows)
    for (const double v : {r.point, r.low, r.high})
      if (std::isfinite(v)) x0 = std::min(x0, v), x1 = std::max(x1, v);
  for (const double v : s.reference_lines) x0 = std::min(x0, v), x1 = std::max(x1, v);
  if (!(x1 >= x0)) throw usage_error("plot", "interval chart '" + s.title + "' has no finite values");
  if (x1 == x0) x0 -= 1, x1 += 1;
  const double pad = (x1 - x0) * 0.05;
  x0 -= pad, x1 += pad;
  std::size_t name_len = 0;
  for (const auto& r : s.rows) name_len = std::max(name_len, r.label.size());
  const int left = 16 + int(name_len) * 6, top = 40, w = 640, row_h = 14, h = int(s.rows.size()) * row_h + 8;
  const int legend_h = int(s.series_names.size()) * 14 + 10;
  canvas c(left + w + 30, top + h + 40 + legend_h);
  c.text(16, 12, s.title, black, 2);
  auto px = [&](double x) { return left + int(std::lround((x - x0) / (x1 - x0) * (w - 1))); };
  for (const double t : nice_ticks(x0, x1, 8)) {
    c.line(px(t), top, px(t), top + h - 1, grey);
    const auto label = tick_label(t);
    c.text(px(t) - canvas::text_width(label) / 2, top + h + 6, label);
  }
  for (const double v : s.reference_lines)
    for (int y = top; y < top + h; y += 6) c.line(px(v), y, px(v), std::min(y + 3, top + h - 1), dark_grey);
  c.line(left, top + h - 1, left + w - 1, top + h - 1, black);
  c.text(left + (w - canvas::text_width(s.x_label)) / 2, top + h + 20, s.x_label);
  for (std::size_t i = 0; i < s.rows.size(); ++i) {
    const auto& r = s.rows[i];
    const int y = top + 4 + int(i) * row_h + row_h / 2;
    c.text(left - 6 - canvas::text_width(r.label), y - 3, r.label);
    if (!std::isfinite(r.point)) continue;
    const auto col = series_colour(r.series);
    if (std::isfinite(r.low) && std::isfinite(r.high)) c.line(px(r.low), y, px(r.high), y, col, 2);
    c.fill(px(r.point) - 2, y - 2, 5, 5, col);
  }
  for (std::size_t k = 0; k < s.series_names.size(); ++k) {
    const int ly = top + h + 38 + int(k) * 14;
    c.fill(left, ly + 2, 16, 3, series_colour(k));
    c.text(left + 22, ly, s.series_names[k]);
  }
  c.save(path);
}

}  // namespace nexus::chart
