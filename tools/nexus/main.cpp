// The `nexus` command line: each subcommand in its own header under commands/, declaring its options and
// running once parsed. Exit codes: 0 ok, 1 a model failed (error, --check, parity), 2 bad usage.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <exception>
#include <iostream>

#include "command.hpp"
#include "nexus/backend/cpu/blas.hpp"
#include "commands/align.hpp"
#include "commands/architectures.hpp"
#include "commands/bench.hpp"
#include "commands/bundle.hpp"
#include "commands/demo.hpp"
#include "commands/eval.hpp"
#include "commands/extract.hpp"
#include "commands/generate.hpp"
#include "commands/inspect.hpp"
#include "commands/parity.hpp"
#include "commands/run.hpp"
#include "commands/score.hpp"
#include "commands/serve.hpp"
#include "commands/train_bridge.hpp"

int main(int argc, char** argv) {
  using namespace nexus::cli;
  CLI::App app{"Nexus: many transformer families through one set of universal blocks"};
  app.require_subcommand(0, 1);  // none only with --version (checked after parsing)
  app.set_version_flag("--version", std::string("nexus ") + NEXUS_VERSION);

  // In the order `nexus --help` lists them.
  inspect_command inspect;
  run_command run;
  parity_command parity;
  generate_command generate;
  demo_command demo;
  bench_command bench;
  extract_command extract;
  train_bridge_command train_bridge;
  score_command score;
  eval_command eval;
  align_command align;
  bundle_command bundle;
  serve_command serve;
  architectures_command architectures;
  command* const commands[] = {&inspect,      &run,   &parity, &generate, &demo,   &bench, &extract,
                               &train_bridge, &score, &eval,   &align,    &bundle, &serve, &architectures};
  for (auto* c : commands) c->add(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "nexus: " << e.what() << " (see nexus --help)\n";
    return 2;
  }
  nexus::cpu::choose_openblas_kernels();  // before any model runs (backend/cpu/blas.hpp says why)
  try {
    for (auto* c : commands)
      if (c->given()) return c->run();
    std::cerr << "nexus: a subcommand is required (see nexus --help)\n";
    return 2;
  } catch (const nexus::usage_error& e) {
    fmt::print(stderr, "nexus: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "nexus: {}\n", e.what());
    return 1;
  }
  return 0;
}
