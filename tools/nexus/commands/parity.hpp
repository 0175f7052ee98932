// `nexus parity`: every layer and the logits against a reference file (a full outputs file, or the compact
// form of tests/data/real: see generate/parity_check.hpp).
#pragma once

#include <fmt/format.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../command.hpp"
#include "../options.hpp"
#include "../table.hpp"
#include "nexus/generate/parity_check.hpp"
#include "nexus/registry/registry.hpp"

namespace nexus::cli {

class parity_command : public command {
 public:
  void add(CLI::App& app) override {
    sub_ = app.add_subcommand("parity", "Compare every layer and the logits with a reference file");
    add_device_options(*sub_, device_);
    sub_->add_option("dir", dir_, "checkpoint folder, .gguf file or Hugging Face id")
        ->required()
        ->transform(model_name);
    sub_->add_option(
            "--ref", ref_,
            "reference outputs (default DIR/outputs.safetensors, or NAME.outputs.safetensors beside NAME.gguf)")
        ->check(CLI::ExistingFile);
    sub_->add_flag("--json", json_,
                   "print one JSON object: {model, reference, pass, rows: [{tensor, ok, max_abs, max_ref, nmse}]}");
  }

  int run() override {
    const checkpoint ref(ref_.empty() ? default_reference(dir_) : ref_);
    const auto rep = check_parity(*load_model(dir_, device_), ref);
    if (json_) {
      auto rows = nlohmann::ordered_json::array();
      for (const auto& r : rep.rows)
        rows.push_back({{"tensor", r.tensor},
                        {"ok", r.ok},
                        {"max_abs", r.stats.max_abs},
                        {"max_ref", r.stats.max_ref},
                        {"nmse", r.stats.nmse}});
      fmt::print("{}\n", nlohmann::ordered_json{{"model", dir_},
                                                {"reference", ref_.empty() ? default_reference(dir_) : ref_},
                                                {"pass", rep.ok()},
                                                {"rows", std::move(rows)}}
                             .dump(2));
      return rep.ok() ? 0 : 1;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : rep.rows) {
      if (r.tensor.ends_with(".greedy")) rows.push_back({r.tensor, "", "", "", r.ok ? "identical" : "DIFFER"});
      else if (r.tensor.ends_with(".topk_ids"))
        rows.push_back({r.tensor, "", "", "", r.ok ? "same ids" : fmt::format("{} ranks differ", r.stats.max_abs)});
      else
        rows.push_back({r.tensor, fmt::format("{:.3e}", r.stats.max_abs), fmt::format("{:.3e}", r.stats.max_ref),
                        fmt::format("{:.3e}", r.stats.nmse), r.ok ? "ok" : "OUT OF BOUNDS"});
    }
    print_table({"tensor", "max|Δ|", "max|ref|", "NMSE", ""}, rows);
    fmt::print("parity {}: {}\n", dir_, rep.ok() ? "pass" : "FAIL");
    return rep.ok() ? 0 : 1;
  }

 private:
  /// DIR/outputs.safetensors, or NAME.outputs.safetensors beside NAME.gguf.
  static std::string default_reference(const std::string& dir) {
    return registry::is_gguf_path(dir) ? (fs::path(dir).replace_extension("").string() + ".outputs.safetensors")
                                       : (fs::path(dir) / "outputs.safetensors").string();
  }

  device_args device_;
  std::string dir_, ref_;
  bool json_ = false;
};

}  // namespace nexus::cli
