// `nexus architectures`: the registered families and their traits, as a Markdown table.
#pragma once

#include <fmt/format.h>

#include "../command.hpp"
#include "nexus/inspect/architecture_table.hpp"

namespace nexus::cli {

class architectures_command : public command {
 public:
  void add(CLI::App& app) override {
    sub_ = app.add_subcommand("architectures", "The registered families and their traits, as a Markdown table");
  }

  int run() override {
    fmt::print("{}", registry::architecture_table_markdown());
    return 0;
  }
};

}  // namespace nexus::cli
