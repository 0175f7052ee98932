// Streaming detokenisation: text for each new token as soon as it is complete, never a broken
// UTF-8 sequence (a partial character, or byte-fallback bytes still waiting for the rest).
#pragma once

#include <string>
#include <vector>

#include "nexus/tokenizer/tokenizer.hpp"

namespace nexus {

class stream_decoder {
 public:
  explicit stream_decoder(const tokenizer& t, bool skip_special_tokens = true) : tok_(t), skip_(skip_special_tokens) {}

  /// Text that became complete with `id` (possibly empty).
  std::string push(std::int32_t id) {
    ids_.push_back(id);
    const auto bytes = tok_.decode_bytes(ids_, skip_);
    if (bytes.size() < emitted_ || bytes.compare(0, emitted_, text_, 0, emitted_) != 0) return {};  // not yet a continuation
    std::string fresh = bytes.substr(emitted_);
    const bool waiting = utf8::incomplete_tail(fresh) > 0 || (fresh.size() >= 3 && fresh.compare(fresh.size() - 3, 3, "\xEF\xBF\xBD") == 0);
    if (waiting) return {};
    text_ = bytes;
    emitted_ = bytes.size();
    return utf8::lossy(fresh);
  }

  /// What is still held back, as the final decode would show it.
  std::string finish() {
    const auto bytes = tok_.decode_bytes(ids_, skip_);
    std::string rest = bytes.size() > emitted_ ? bytes.substr(emitted_) : std::string();
    emitted_ = bytes.size();
    text_ = bytes;
    return utf8::lossy(rest);
  }

 private:
  const tokenizer& tok_;
  bool skip_;
  std::vector<std::int32_t> ids_;
  std::string text_;
  std::size_t emitted_ = 0;
};

}  // namespace nexus
