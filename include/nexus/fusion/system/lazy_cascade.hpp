// The cascade as it saves work, over a text that grows one byte at a time, known (scoring) or chosen
// (generation): its first teacher reads every byte; a later one reads a position only where the
// cascade reaches it, catching up over the bytes before with byte_level_teacher::skip (only the
// bases that position needs run). Its distributions equal cascade_position over every teacher's
// distributions (to GEMM rounding).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nexus/fusion/bytes/byte_level.hpp"
#include "nexus/fusion/system/parameters.hpp"

namespace nexus::fusion {

class lazy_cascade {
 public:
  /// What one teacher (in cascade order) did so far.
  struct teacher_counts {
    std::size_t bytes_read = 0, bytes_decided = 0;
    double seconds = 0;
  };

  /// `p` must outlive the cascade; `capacity`: the most bytes it will read.
  lazy_cascade(teacher_set& teachers, const system_parameters& p, std::int64_t capacity)
      : p_(p), mix_(p.cascade_mixer()) {
    if (!p.thresholds) throw usage_error("cascade", "the system has no cascade (fit one: bundle create --fit)");
    byte_level_options opt;
    opt.capacity = std::max<std::int64_t>(opt.capacity, capacity + 16);
    lookahead_ = opt.lookahead;
    for (const auto t : p.order)
      views_.push_back(std::make_unique<byte_level_teacher>(teachers.get(t), teachers.tok(t), opt));
    const auto T = views_.size();
    at_.assign(T, 0), counts_.assign(T, {}), ordered_.resize(T);
  }

  /// The cascade's distribution at the next position, and how many teachers it consulted there.
  const cascade_step& step() {
    if (stepped_) return step_;
    const auto T = views_.size();
    ordered_[0] = views_[0]->distribution();
    step_ = {ordered_[0], 1};
    while (step_.consulted < T && entropy(step_.p) > (*p_.thresholds)[step_.consulted - 1]) {
      const auto k = step_.consulted++;
      timed(k, [&] {
        views_[k]->skip(std::string_view(text_).substr(at_[k]));
        at_[k] = text_.size();
        ordered_[k] = views_[k]->distribution();
      });
      step_.p = mix_(ordered_, step_.consulted);
    }
    stepped_ = true;
    return step_;
  }
  /// The distribution of the k-th teacher of the cascade's order at this position (k < step().consulted).
  const byte_distribution& consulted(std::size_t k) const { return ordered_.at(k); }

  /// Appends `c`; `upcoming` (scoring: the known text from c on) lets the first teacher's next bases run together.
  void push(unsigned char c, std::string_view upcoming = {}) {
    const auto& s = step();
    for (std::size_t k = 0; k < s.consulted; ++k) ++counts_[k].bytes_read;
    ++counts_[s.consulted - 1].bytes_decided;
    escalated_ += s.consulted > 1;
    timed(0, [&] {
      if (!upcoming.empty() && views_[0]->looked_ahead().empty()) views_[0]->look_ahead(upcoming.substr(0, lookahead_));
      views_[0]->push(c);
    });
    text_ += char(c);
    stepped_ = false;
  }

  std::size_t escalated() const noexcept { return escalated_; }  // positions that read more than the first teacher
  const teacher_counts& counts(std::size_t k) const { return counts_.at(k); }
  std::size_t forward_tokens(std::size_t k) const { return views_.at(k)->stats().forward_tokens; }

 private:
  template <class F>
  void timed(std::size_t k, F&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    counts_[k].seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  const system_parameters& p_;
  subset_mixer mix_;
  std::size_t lookahead_ = 0;
  std::vector<std::unique_ptr<byte_level_teacher>> views_;  // in cascade order
  std::vector<std::size_t> at_;                             // bytes each view has read
  std::vector<teacher_counts> counts_;
  std::vector<byte_distribution> ordered_;
  std::string text_;
  cascade_step step_;
  bool stepped_ = false;
  std::size_t escalated_ = 0;
};

}  // namespace nexus::fusion
