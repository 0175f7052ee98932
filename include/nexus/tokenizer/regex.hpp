// A compiled Unicode regular expression (PCRE2, UTF + Unicode properties, JIT when available),
// as the tokenizer's Split and ByteLevel pre-tokenizers need it.
#pragma once

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nexus/core/error.hpp"

namespace nexus {

class unicode_regex {
 public:
  unicode_regex(const std::string& pattern, const std::string& where) {
    int err = 0;
    PCRE2_SIZE offset = 0;
    code_.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &err,
                              &offset, nullptr));
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw unsupported_error(where, "regex '" + pattern + "' does not compile at offset " + std::to_string(offset) +
                                         ": " + reinterpret_cast<char*>(msg));
    }
    pcre2_jit_compile(code_.get(), PCRE2_JIT_COMPLETE);  // best effort: the interpreter is the fallback
    match_.reset(pcre2_match_data_create_from_pattern(code_.get(), nullptr));
  }

  /// [begin, end) byte ranges of the successive non-overlapping matches in `s`.
  std::vector<std::pair<std::size_t, std::size_t>> find_all(std::string_view s) const {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    std::size_t at = 0;
    while (at <= s.size()) {
      const int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), at, PCRE2_NO_UTF_CHECK,
                                 match_.get(), nullptr);
      if (rc < 0) break;
      const auto* ov = pcre2_get_ovector_pointer(match_.get());
      const std::size_t b = ov[0], e = ov[1];
      if (e == b) {  // empty match: skip one character
        if (b >= s.size()) break;
        at = b + 1;
        while (at < s.size() && (static_cast<unsigned char>(s[at]) & 0xc0) == 0x80) ++at;
        continue;
      }
      out.emplace_back(b, e);
      at = e;
    }
    return out;
  }

 private:
  struct code_free {
    void operator()(pcre2_code* c) const { pcre2_code_free(c); }
  };
  struct match_free {
    void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
  };
  std::unique_ptr<pcre2_code, code_free> code_;
  std::unique_ptr<pcre2_match_data, match_free> match_;  // not thread-safe: one tokenizer per thread
};

}  // namespace nexus
