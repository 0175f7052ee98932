// `nexus demo`, the main job: the shipped checkpoints side by side, each checked against the
// outputs transformers recorded for it, each generating a short continuation, then a summary.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "commands.hpp"

namespace nexus::cli {

/// A progress bar on stderr that appears only once its task has taken more than a second.
class progress {
 public:
  progress(std::string label, std::size_t total) : label_(std::move(label)), total_(total), tty_(::isatty(STDERR_FILENO) != 0) {}
  ~progress() {
    if (drawn_) fmt::print(stderr, "\r\033[K");
  }
  void update(std::size_t done, const std::string& what) {
    const auto elapsed = std::chrono::duration<double>(clock::now() - start_).count();
    if (!tty_ || elapsed < 1.0) return;
    const std::size_t width = 30, filled = total_ ? width * done / total_ : width;
    fmt::print(stderr, "\r\033[K{} [{}{}] {}/{} {}", label_, std::string(filled, '#'), std::string(width - filled, '.'), done, total_, what);
    std::fflush(stderr);
    drawn_ = true;
  }

 private:
  using clock = std::chrono::steady_clock;
  std::string label_;
  std::size_t total_;
  bool tty_, drawn_ = false;
  clock::time_point start_ = clock::now();
};

inline int demo(const std::string& models_dir) {
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(models_dir))
    if (fs::exists(e.path() / "config.json")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  if (dirs.empty()) throw usage_error("--models", models_dir + " holds no checkpoint folders");

  struct row {
    std::string name, family, parity = "-", worst = "-", prefill = "-", decode = "-";
    std::int64_t parameters = 0;
  };
  std::vector<row> summary;
  std::vector<model_summary> read;  // every folder, opened once: mapped weights and binding
  {
    progress bar("reading", dirs.size());
    for (std::size_t i = 0; i < dirs.size(); ++i) {
      bar.update(i, dirs[i].filename().string());
      read.push_back(summarize(dirs[i]));
      summary.push_back({dirs[i].filename().string(), read.back().source.arch.family});
      summary.back().parameters = read.back().parameters;
    }
  }
  std::vector<const model_summary*> families;  // one fixture per family, for the side-by-side table
  for (std::size_t i = 0; i < dirs.size(); ++i)
    if (dirs[i].filename() == summary[i].family) families.push_back(&read[i]);

  fmt::print("== Architectures: {} families, rows where they differ ==\n", families.size());
  print_descriptor_table(families, true);

  fmt::print("\n== Parity against transformers 4.57 (fp32; bounds max|Δ| ≤ 1e-4·max(1,|ref|), NMSE ≤ 1e-8) ==\n");
  // One model at a time, built from the weights read above: checked, and for each family's own
  // fixture, generating; the generated lines are printed after the parity lines.
  const std::string prompt_text = "The quick brown fox";
  std::vector<std::string> generated;
  int failures = 0;
  {
    progress bar("parity", dirs.size());
    for (std::size_t i = 0; i < dirs.size(); ++i) {
      bar.update(i, dirs[i].filename().string());
      const auto ref_path = dirs[i] / "outputs.safetensors";
      const bool generates = dirs[i].filename() == summary[i].family && fs::exists(dirs[i] / "tokenizer.json");
      if (!fs::exists(ref_path) && !generates) continue;
      const auto& src = read[i].source;
      const auto m = make_cpu_model(src.arch, unpack_weights(src.bound, src.arch));
      if (fs::exists(ref_path)) {
        const auto rep = check_parity(*m, checkpoint(ref_path));
        double nmse = 0;
        std::size_t greedy = 0;
        for (const auto& r : rep.rows) {
          if (r.tensor.ends_with(".logits")) nmse = std::max(nmse, r.stats.nmse);
          if (r.tensor.ends_with(".greedy") && r.ok) ++greedy;
        }
        failures += rep.ok() ? 0 : 1;
        summary[i].parity = rep.ok() ? "pass" : "FAIL";
        summary[i].worst = fmt::format("{:.1e}", rep.worst_logits());
        fmt::print("{} {:<20} logits max|Δ| {:.1e}  NMSE {:.1e}  {} sequences, greedy identical in {}\n", rep.ok() ? "PASS" : "FAIL",
                   summary[i].name, rep.worst_logits(), nmse, rep.sequences, greedy);
      }
      if (generates) {
        const auto tok = tokenizer::load(dirs[i]);
        generate_options opt;
        opt.max_new_tokens = 24;
        const auto r = generate(*m, &tok, tok.encode(prompt_text, true), opt);
        std::string shown;
        for (char c : r.text) shown += (c == '\n' ? std::string("\\n") : std::string(1, c));
        generated.push_back(fmt::format("{:<10} {}|{}", summary[i].name, prompt_text, shown));
        summary[i].prefill = fmt::format("{:.0f}", r.prefill_tokens_per_second());
        summary[i].decode = fmt::format("{:.0f}", r.decode_tokens_per_second());
      }
    }
  }

  fmt::print("\n== Generation (greedy, 24 tokens, prompt \"{}\") ==\n", prompt_text);
  for (const auto& line : generated) fmt::print("{}\n", line);

  fmt::print("\n== Summary ==\n");
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : summary) rows.push_back({s.name, s.family, human(s.parameters), s.parity, s.worst, s.prefill, s.decode});
  print_table({"model", "family", "params", "parity", "max|Δ| logits", "prefill tok/s", "decode tok/s"}, rows);
  fmt::print("{} models, {} parity failures\n", summary.size(), failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace nexus::cli
