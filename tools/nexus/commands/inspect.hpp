// `nexus inspect`: descriptors of checkpoints side by side, or as JSON; with --check, every tensor bound.
#pragma once

#include <fmt/format.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../command.hpp"
#include "../options.hpp"
#include "../descriptor_table.hpp"
#include "nexus/inspect/summary.hpp"

namespace nexus::cli {

inline nlohmann::ordered_json summary_json(const model_summary& m, bool check) {
  nlohmann::ordered_json j;
  j["path"] = m.path;
  j["descriptor"] = reflect::to_json(m.source.arch);
  j["parameters"] = m.parameters;
  j["tensors"] = m.tensor_count;
  j["bytes_by_dtype"] = m.bytes_by_dtype;
  if (check)
    j["check"] = {{"ok", m.source.bound.complete()},
                  {"missing", m.source.bound.missing},
                  {"mis_shaped", m.source.bound.mis_shaped},
                  {"unused", m.source.bound.unused},
                  {"ignored", m.source.bound.ignored}};
  return j;
}

class inspect_command : public command {
 public:
  void add(CLI::App& app) override {
    sub_ = app.add_subcommand("inspect", "Descriptors of checkpoints side by side");
    sub_->add_option("dirs", dirs_,
                     "Hugging Face checkpoint folders (config.json + *.safetensors), .gguf files or Hugging Face ids")
        ->required()
        ->transform(model_name);
    sub_->add_flag("--check", check_,
                   "verify every expected tensor exists once with the right shape and none is unused");
    sub_->add_flag("--json", json_, "print JSON instead of a table");
  }

  int run() override {
    std::vector<model_summary> models;
    int status = 0;
    for (const auto& dir : dirs_) {
      try {
        models.push_back(summarize(dir));
      } catch (const error& e) {
        fmt::print(stderr, "nexus inspect: {}\n", e.what());
        status = 1;
      }
    }
    if (json_) {
      nlohmann::ordered_json out = nlohmann::ordered_json::array();
      for (const auto& m : models) out.push_back(summary_json(m, check_));
      fmt::print("{}\n", out.dump(2));
    } else if (!models.empty()) {
      std::vector<const model_summary*> columns;
      for (const auto& m : models) columns.push_back(&m);
      print_descriptor_table(columns);
    }
    if (check_ && !check_bindings(models)) status = 1;
    return status;
  }

 private:
  /// Prints each model's binding check (the failures on stderr); whether all are complete.
  bool check_bindings(const std::vector<model_summary>& models) const {
    bool ok = true;
    for (const auto& m : models) {
      if (m.source.bound.complete()) {
        if (!json_)
          fmt::print("check {}: ok ({} tensors bound, {} ignored)\n", m.path, m.source.bound.tensors.size(),
                     m.source.bound.ignored.size());
      } else {
        fmt::print(stderr, "nexus inspect: {}: checkpoint does not match its config: {}\n", m.path,
                   m.source.bound.report());
        ok = false;
      }
    }
    return ok;
  }

  std::vector<std::string> dirs_;
  bool check_ = false, json_ = false;
};

}  // namespace nexus::cli
