// The `nexus` command line: each subcommand in its own header under commands/, declaring its options and
// running once parsed. Exit codes: 0 ok, 1 a model failed (error, --check, parity), 2 bad usage.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdlib>
#include <exception>
#include <iostream>

#include "command.hpp"
#include "nexus/core/log.hpp"
#include "nexus/io/sha256.hpp"
#include "progress.hpp"
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
  // How much the library says on stderr beyond results (nexus/core/log.hpp): given before or after the
  // subcommand; -v is info, -vv debug; --log-level wins over -v, and NEXUS_LOG_LEVEL stands in for it.
  int verbosity = 0;
  std::string log_level;
  app.add_flag("-v,--verbose", verbosity, "say more on stderr: -v what is opened and loaded, -vv also caches");
  app.add_option("--log-level", log_level, "error, warn (default), info or debug; NEXUS_LOG_LEVEL sets it too")
      ->envname("NEXUS_LOG_LEVEL")
      ->check(CLI::IsMember({"error", "warn", "info", "debug"}));
  app.fallthrough();

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

  if (const char* env = std::getenv("NEXUS_LOG_LEVEL"); env && *env && !nexus::log::parse_level(env)) {
    fmt::print(stderr, "nexus: NEXUS_LOG_LEVEL: '{}' is not one of error, warn, info, debug\n", env);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "nexus: " << e.what() << " (see nexus --help)\n";
    return 2;
  }
  if (!log_level.empty()) nexus::log::set_threshold(*nexus::log::parse_level(log_level));
  else if (verbosity > 0) nexus::log::set_threshold(verbosity > 1 ? nexus::log::level::debug : nexus::log::level::info);
  nexus::cpu::choose_openblas_kernels();                      // before any model runs (backend/cpu/blas.hpp says why)
  nexus::hash_progress() = nexus::cli::hash_progress_line{};  // hashing a teacher shows progress on a terminal
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
