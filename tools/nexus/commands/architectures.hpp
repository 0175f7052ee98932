// `nexus architectures`: the registered families and their traits, as a Markdown table (--json: as JSON).
#pragma once

#include <fmt/format.h>

#include "../command.hpp"
#include "nexus/inspect/architecture_table.hpp"

namespace nexus::cli {

class architectures_command : public command {
 public:
  void add(CLI::App& app) override {
    sub_ = app.add_subcommand("architectures", "The registered families and their traits, as a Markdown table");
    sub_->add_flag("--json", json_,
                   "print a JSON array: each family's defaults as a descriptor, and its instantiation");
  }

  int run() override {
    if (json_) fmt::print("{}\n", registry::architecture_table_json().dump(2));
    else fmt::print("{}", registry::architecture_table_markdown());
    return 0;
  }

 private:
  bool json_ = false;
};

}  // namespace nexus::cli
