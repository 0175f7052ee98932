// One subcommand of `nexus`: it declares its own options, bound to its own arguments, and runs once the
// command line is parsed. main.cpp registers each command and runs the one given.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <initializer_list>
#include <string>

#include "nexus/core/error.hpp"

namespace nexus::cli {

namespace fs = std::filesystem;

class command {
 public:
  virtual ~command() = default;
  /// Adds the subcommand and its options to `app`.
  virtual void add(CLI::App& app) = 0;
  /// Runs the parsed subcommand: the exit code (0 ok, 1 a model failed); bad usage throws usage_error.
  virtual int run() = 0;
  /// Whether the command line names this subcommand.
  bool given() const { return sub_ != nullptr && static_cast<bool>(*sub_); }

 protected:
  /// A flag this run would ignore is refused, by name: usage_error "--temperature: <why>" (`in`: a
  /// subcommand of this command's that holds the flags).
  void refuse(std::initializer_list<const char*> flags, const std::string& why, const CLI::App* in = nullptr) const {
    const CLI::App* app = in ? in : sub_;
    for (const char* f : flags)
      if (app->count(f) > 0) throw usage_error(f, why);
  }

  CLI::App* sub_ = nullptr;
};

}  // namespace nexus::cli
