// `nexus run`: top-k next tokens at every position of a sequence of token ids.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../command.hpp"
#include "../options.hpp"

namespace nexus::cli {

/// "1,2,3" -> token ids (usage_error naming the item that is not one).
inline std::vector<std::int32_t> parse_ids(const std::string& text) {
  std::vector<std::int32_t> ids;
  for (std::size_t at = 0; at <= text.size();) {
    const auto comma = std::min(text.find(',', at), text.size());
    const auto item = text.substr(at, comma - at);
    try {
      std::size_t used = 0;
      const long v = std::stol(item, &used);
      if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(item);
      ids.push_back(static_cast<std::int32_t>(v));
    } catch (const std::exception&) {
      throw usage_error("--ids", "'" + item + "' is not a token id (expected comma-separated non-negative integers)");
    }
    at = comma + 1;
  }
  return ids;
}

class run_command : public command {
 public:
  void add(CLI::App& app) override {
    sub_ = app.add_subcommand("run", "Top-k next tokens at every position");
    add_device_options(*sub_, device_);
    sub_->add_option("dir", dir_, "checkpoint folder, .gguf file or Hugging Face id")
        ->required()
        ->transform(model_name);
    sub_->add_option("--ids", ids_, "comma-separated token ids, e.g. 1,2,3")->required();
    sub_->add_option("--top", top_, "how many tokens per position")->check(CLI::Range(1, 1000));
    sub_->add_flag("--json", json_, "print one JSON object: {model, positions: [{position, id, top: [{id, logit}]}]}");
  }

  int run() override {
    const auto ids = parse_ids(ids_);
    const auto m = load_model(dir_, device_);
    auto cache = m->new_cache(std::int64_t(ids.size()));
    const auto out = m->forward(ids, cache);
    const auto vocab = std::size_t(m->arch().dims.vocab_size);
    const auto k = std::min<std::size_t>(std::size_t(std::max(top_, 1)), vocab);
    auto positions = nlohmann::ordered_json::array();
    for (std::size_t p = 0; p < ids.size(); ++p) {
      std::vector<std::size_t> order(vocab);
      std::iota(order.begin(), order.end(), 0);
      const float* row = out.logits.data.data() + p * vocab;
      std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(k), order.end(),
                        [&](auto a, auto b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
      if (json_) {
        auto top = nlohmann::ordered_json::array();
        for (std::size_t i = 0; i < k; ++i) top.push_back({{"id", order[i]}, {"logit", row[order[i]]}});
        positions.push_back({{"position", p}, {"id", ids[p]}, {"top", std::move(top)}});
        continue;
      }
      std::string line = fmt::format("pos {:>4} id {:>6} ->", p, ids[p]);
      for (std::size_t i = 0; i < k; ++i) line += fmt::format(" {}:{:.4f}", order[i], row[order[i]]);
      fmt::print("{}\n", line);
    }
    if (json_) fmt::print("{}\n", nlohmann::ordered_json{{"model", dir_}, {"positions", std::move(positions)}}.dump(2));
    return 0;
  }

 private:
  device_args device_;
  std::string dir_, ids_;
  int top_ = 5;
  bool json_ = false;
};

}  // namespace nexus::cli
