// Stop strings over streamed text, one rule for every generator (a model's tokens, a fused system's
// bytes): generation ends at the first occurrence of any stop string, which is not part of the
// result (as in the OpenAI API), and streamed text never shows a piece of a stop string: the tail
// that could still begin one is held back until it cannot.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace nexus {

class stop_scanner {
 public:
  explicit stop_scanner(std::vector<std::string> stops) : stops_(std::move(stops)) {
    std::erase(stops_, std::string());
    for (const auto& s : stops_) longest_ = std::max(longest_, s.size());
  }

  /// Appends `piece` (complete UTF-8 characters); returns the text that can be streamed now.
  std::string push(std::string_view piece) {
    if (stopped_) return {};
    const auto before = text_.size();
    text_ += piece;
    const auto from = before >= longest_ ? before - longest_ + 1 : 0;
    auto hit = std::string::npos;
    for (const auto& s : stops_) hit = std::min(hit, text_.find(s, from));
    if (hit != std::string::npos) {
      text_.resize(hit);
      stopped_ = true;
      return release(text_.size());
    }
    return release(text_.size() - held_tail());
  }

  /// The text held back at the end of generation (it began no stop string after all).
  std::string flush() { return release(text_.size()); }

  bool stopped() const noexcept { return stopped_; }
  /// Everything pushed, cut before the stop string that ended it.
  const std::string& text() const noexcept { return text_; }

 private:
  /// The longest end of the text that is the start of a stop string (it could still become one).
  std::size_t held_tail() const {
    std::size_t held = 0;
    for (const auto& s : stops_)
      for (std::size_t n = std::min(s.size() - 1, text_.size()); n > held; --n)
        if (std::string_view(text_).substr(text_.size() - n) == std::string_view(s).substr(0, n)) {
          held = n;
          break;
        }
    return held;
  }
  std::string release(std::size_t upto) {
    if (upto <= released_) return {};
    auto out = text_.substr(released_, upto - released_);
    released_ = upto;
    return out;
  }

  std::vector<std::string> stops_;
  std::size_t longest_ = 0, released_ = 0;
  std::string text_;
  bool stopped_ = false;
};

}  // namespace nexus
