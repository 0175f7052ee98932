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

  /// Text that became complete with `id` (possibly empty). Decodes only a short window: the ids
  /// since the last emitted text, after the ids that produced it (whose decoding is subtracted,
  /// so decoders that treat a first token specially cancel out) — as `tokenizers`' DecodeStream.
  std::string push(std::int32_t id) {
    ids_.push_back(id);
    const std::span<const std::int32_t> all(ids_);
    const auto before = tok_.decode_bytes(all.subspan(prefix_, read_ - prefix_), skip_);
    const auto now = tok_.decode_bytes(all.subspan(prefix_), skip_);
    if (now.size() <= before.size() || now.compare(0, before.size(), before) != 0) return {};
    std::string fresh = now.substr(before.size());
    const bool waiting = utf8::incomplete_tail(fresh) > 0 ||
                         (fresh.size() >= 3 && fresh.compare(fresh.size() - 3, 3, "\xEF\xBF\xBD") == 0);
    if (waiting) return {};
    prefix_ = read_;
    read_ = ids_.size();
    return utf8::lossy(fresh);
  }

  /// What is still held back, as the final decode shows it.
  std::string finish() {
    const std::span<const std::int32_t> all(ids_);
    const auto before = tok_.decode_bytes(all.subspan(prefix_, read_ - prefix_), skip_);
    const auto now = tok_.decode_bytes(all.subspan(prefix_), skip_);
    prefix_ = read_ = ids_.size();
    if (now.size() <= before.size() || now.compare(0, before.size(), before) != 0) return {};
    return utf8::lossy(now.substr(before.size()));
  }

 private:
  const tokenizer& tok_;
  bool skip_;
  std::vector<std::int32_t> ids_;
  std::size_t prefix_ = 0, read_ = 0;  // window start; end of the ids already emitted
};

}  // namespace nexus
