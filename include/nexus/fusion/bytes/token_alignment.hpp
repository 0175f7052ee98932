// Byte-exact alignment of two tokenizations of the same text. A shared boundary is a byte offset
// where both have a token boundary: there both teachers have read exactly the same prefix of the
// text, so their states there describe the same thing. Linear in the number of tokens; no heuristic.
//
// A token's boundary is the end of its span (tokenizer::encode_with_spans); at an offset several
// tokens may end (empty spans: bos, a prepended ▁, the later parts of one character), and the one
// that counts is the last: the prefix is read only once all of them are.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "nexus/core/error.hpp"
#include "nexus/tokenizer/tokenizer.hpp"

namespace nexus::fusion {

/// A byte offset where both tokenizations have a boundary, and the index of the last token of each
/// that ends there.
struct shared_boundary {
  std::size_t offset = 0;
  std::size_t last_a = 0, last_b = 0;
  bool operator==(const shared_boundary&) const = default;
};

namespace detail {
/// Spans must be in reading order: begin <= end, ends never decreasing.
inline void check_spans(std::span<const byte_span> s, const char* which) {
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s[i].begin > s[i].end || (i && s[i].end < s[i - 1].end))
      throw usage_error("align", std::string("spans of teacher ") + which + " are out of order at token " +
                                     std::to_string(i) + " ([" + std::to_string(s[i].begin) + ", " +
                                     std::to_string(s[i].end) + "))");
}
}  // namespace detail

/// Offsets where both `a` and `b` (spans of the same text, in token order) have a token ending, in
/// increasing order, each with the last token of `a` and of `b` that ends there.
inline std::vector<shared_boundary> shared_boundaries(std::span<const byte_span> a, std::span<const byte_span> b) {
  detail::check_spans(a, "a");
  detail::check_spans(b, "b");
  if (!a.empty() && !b.empty() && a.back().end != b.back().end)
    throw usage_error("align", "the two tokenizations end at different offsets (" + std::to_string(a.back().end) +
                                   " and " + std::to_string(b.back().end) + "): not spans of the same text");
  std::vector<shared_boundary> out;
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const std::size_t x = a[i].end, y = b[j].end;
    if (x < y) {
      ++i;
      continue;
    }
    if (y < x) {
      ++j;
      continue;
    }
    while (i + 1 < a.size() && a[i + 1].end == x) ++i;  // the last token ending at x
    while (j + 1 < b.size() && b[j + 1].end == x) ++j;
    out.push_back({x, i, j});
    ++i, ++j;
  }
  return out;
}

enum class pooling {
  last,  // the vector of the segment's last token (the one that ends at the boundary)
  mean,  // the mean over the segment's tokens
};

enum class teacher { a, b };

/// One vector per shared boundary for one teacher: `rows` holds that teacher's per-token vectors
/// (row-major, `dim` floats each); the segment of boundary k is the tokens after the last token of
/// boundary k-1 (from the first token for k = 0) up to its own last token, never empty.
inline std::vector<float> pool(std::span<const float> rows, std::size_t dim, std::span<const shared_boundary> bounds,
                               teacher which, pooling how) {
  if (dim == 0 || rows.size() % dim)
    throw usage_error("align", std::to_string(rows.size()) + " floats are not rows of " + std::to_string(dim));
  const std::size_t tokens = rows.size() / dim;
  std::vector<float> out(bounds.size() * dim, 0.0f);
  std::size_t first = 0;
  for (std::size_t k = 0; k < bounds.size(); ++k) {
    const std::size_t last = which == teacher::a ? bounds[k].last_a : bounds[k].last_b;
    if (last >= tokens || last < first)
      throw usage_error("align", "boundary " + std::to_string(k) + " names token " + std::to_string(last) + " (" +
                                     std::to_string(tokens) + " rows; the previous boundary ended at token " +
                                     std::to_string(first) + ")");
    float* dst = out.data() + k * dim;
    switch (how) {
      case pooling::last: std::copy_n(rows.data() + last * dim, dim, dst); break;
      case pooling::mean: {
        for (std::size_t t = first; t <= last; ++t)
          for (std::size_t d = 0; d < dim; ++d) dst[d] += rows[t * dim + d];
        const float scale = 1.0f / float(last - first + 1);
        for (std::size_t d = 0; d < dim; ++d) dst[d] *= scale;
        break;
      }
    }
    first = last + 1;
  }
  return out;
}

}  // namespace nexus::fusion
