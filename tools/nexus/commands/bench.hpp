// `nexus bench`: load time, prefill and greedy-decode throughput, resident memory of the CPU model,
// one line of JSON per run for bench/cpu/run.py (or a table). Timings are best of --repeat; every
// repeat starts from an empty cache. `--logits-out` also writes the all-position logits of the prompt
// as a .npy file for the fidelity check.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "../command.hpp"
#include "../options.hpp"
#include "../table.hpp"
#include "nexus/tokenizer/tokenizer.hpp"

namespace nexus::cli {

struct bench_args {
  std::string model;
  std::vector<std::int64_t> prompt_tokens;  // empty: the --ids length, else 128 and 512
  std::int64_t decode = 128;
  std::vector<int> threads{0};
  std::string precision = "stored";
  int repeat = 3;
  std::string ids_file, logits_out;
  bool json = false;
};

/// A deterministic English text, tokenised and repeated to the prompt length when no --ids are given.
inline constexpr const char* bench_text =
    "The history of the printing press begins in the fifteenth century, when Johannes Gutenberg combined a "
    "screw press, oil-based ink and movable metal type into one process. Within fifty years presses were "
    "running in more than two hundred cities across Europe, and the price of books fell so far that a "
    "student could own the texts he studied. Scholars argue about how quickly literacy followed, but few "
    "doubt that cheap printed pamphlets changed how news, science and religious arguments travelled. ";

/// VmHWM (peak) and VmRSS (current) of this process from /proc/self/status, in bytes; -1 where unknown.
struct resident_memory {
  std::int64_t peak = -1, current = -1;
};
inline resident_memory read_resident_memory() {
  resident_memory r;
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    auto value = [&] { return std::int64_t(std::stoll(line.substr(line.find(':') + 1))) * 1024; };  // "  123 kB"
    if (line.starts_with("VmHWM:")) r.peak = value();
    if (line.starts_with("VmRSS:")) r.current = value();
  }
  return r;
}

/// Bytes of the weights on disk: the .gguf file, or a folder's *.safetensors / *.gguf files.
inline std::int64_t weight_bytes_on_disk(const fs::path& path) {
  if (fs::is_regular_file(path)) return std::int64_t(fs::file_size(path));
  std::int64_t total = 0;
  for (const auto& e : fs::directory_iterator(path))
    if (e.is_regular_file() && (e.path().extension() == ".safetensors" || e.path().extension() == ".gguf"))
      total += std::int64_t(e.file_size());
  return total;
}

/// Token ids from a file: integers separated by commas, spaces or newlines.
inline std::vector<std::int32_t> read_ids_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw usage_error("--ids", "cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  std::replace_if(
      s.begin(), s.end(), [](char c) { return c == ',' || c == '\n' || c == '\r' || c == '\t'; }, ' ');
  std::vector<std::int32_t> ids;
  std::istringstream words(s);
  for (std::string w; words >> w;) {
    try {
      std::size_t used = 0;
      const long long v = std::stoll(w, &used);
      if (used != w.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(w);
      ids.push_back(std::int32_t(v));
    } catch (const std::exception&) {
      throw usage_error("--ids", path + ": '" + w + "' is not a token id (expected non-negative integers)");
    }
  }
  if (ids.empty()) throw usage_error("--ids", path + " holds no token ids");
  return ids;
}

/// `ids` repeated until `n` tokens.
inline std::vector<std::int32_t> cycled(const std::vector<std::int32_t>& ids, std::size_t n) {
  std::vector<std::int32_t> out;
  out.reserve(n);
  while (out.size() < n) out.push_back(ids[out.size() % ids.size()]);
  return out;
}

/// The bench prompt without --ids: the text once with the tokenizer's special tokens, then again
/// without them, until `n` tokens.
inline std::vector<std::int32_t> text_prompt(const std::string& model_path, std::size_t n) {
  const auto tok = tokenizer::load(model_path);
  auto ids = tok.encode(bench_text, true);
  const auto more = tok.encode(bench_text, false);
  while (ids.size() < n) ids.insert(ids.end(), more.begin(), more.end());
  ids.resize(n);
  return ids;
}

inline std::int32_t greedy_token(const tensor_f32& logits) {
  const auto vocab = std::size_t(logits.shape.back());
  const float* row = logits.data.data() + logits.data.size() - vocab;
  return std::int32_t(std::max_element(row, row + vocab) - row);  // the first of equal maxima, as argmax
}

/// Writes a [rows, cols] fp32 tensor as a NumPy .npy file (version 1.0, little-endian).
inline void write_npy(const std::string& path, const tensor_f32& t) {
  static_assert(std::endian::native == std::endian::little, ".npy is written as <f4 from memory");
  std::string header =
      fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", t.shape.at(0), t.shape.at(1));
  header.append(63 - (10 + header.size()) % 64, ' ');  // magic, version and length take 10 bytes; pad to 64
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) throw usage_error("--logits-out", "cannot write " + path);
  const std::uint16_t len = std::uint16_t(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.write(reinterpret_cast<const char*>(&len), 2);
  out << header;
  out.write(reinterpret_cast<const char*>(t.data.data()), std::streamsize(t.data.size() * sizeof(float)));
  if (!out) throw usage_error("--logits-out", "failed writing " + path);
}

struct bench_timing {
  std::int64_t prompt_tokens = 0, decode_tokens = 0, kv_cache_bytes = 0;
  double prefill_s = 1e300, decode_s = 1e300;  // best of the repeats
  std::vector<std::int32_t> generated;         // the greedy tokens of the decode
  bool deterministic = true;                   // every repeat generated the same tokens
};

/// Prefill of `prompt`, then `decode` greedy tokens one forward each, best of `repeat`.
inline bench_timing time_prompt(const model& m, const std::vector<std::int32_t>& prompt, std::int64_t decode,
                                int repeat) {
  using clock = std::chrono::steady_clock;
  bench_timing t;
  t.prompt_tokens = std::int64_t(prompt.size());
  t.decode_tokens = decode;
  auto cache = m.new_cache(t.prompt_tokens + std::max<std::int64_t>(decode, 1));
  const auto& d = m.arch().dims;
  t.kv_cache_bytes = 2 * d.num_layers * cache.capacity() * cache.width() * std::int64_t(sizeof(float));
  const forward_options last_only{.all_logits = false};
  for (int r = 0; r < repeat; ++r) {
    cache.clear();
    std::vector<std::int32_t> generated;
    const auto t0 = clock::now();
    auto out = m.forward(prompt, cache, last_only);
    const auto t1 = clock::now();
    for (std::int64_t i = 0; i < decode; ++i) {
      const std::int32_t next = greedy_token(out.logits);
      generated.push_back(next);
      out = m.forward(std::span(&next, 1), cache, last_only);
    }
    const auto t2 = clock::now();
    t.prefill_s = std::min(t.prefill_s, std::chrono::duration<double>(t1 - t0).count());
    t.decode_s = std::min(t.decode_s, std::chrono::duration<double>(t2 - t1).count());
    if (r == 0) t.generated = std::move(generated);
    else if (generated != t.generated) t.deterministic = false;
  }
  return t;
}

inline int bench(bench_args a) {
  using clock = std::chrono::steady_clock;
  std::vector<std::int32_t> ids;
  if (!a.ids_file.empty()) ids = read_ids_file(a.ids_file);
  if (a.prompt_tokens.empty())
    a.prompt_tokens = ids.empty() ? std::vector<std::int64_t>{128, 512} : std::vector{std::int64_t(ids.size())};
  const auto longest = std::size_t(*std::max_element(a.prompt_tokens.begin(), a.prompt_tokens.end()));
  cpu_options_of({"cpu", a.precision, 0});  // a bad --precision fails before the prompt is made
  const auto prompt = ids.empty() ? text_prompt(a.model, longest) : cycled(ids, longest);

  nlohmann::ordered_json out;
  out["model"] = a.model;
  out["precision"] = a.precision;
  out["weight_bytes_on_disk"] = weight_bytes_on_disk(a.model);
  out["prompt_source"] = a.ids_file.empty() ? std::string("built-in text") : a.ids_file;
  out["repeat"] = a.repeat;
  out["hardware_threads"] = std::thread::hardware_concurrency();
  out["runs"] = nlohmann::ordered_json::array();
  std::vector<std::vector<std::string>> rows;
  for (std::size_t ti = 0; ti < a.threads.size(); ++ti) {
    const int threads = a.threads[ti];
    const auto t0 = clock::now();
    const auto m = load_cpu_model(a.model, cpu_options_of({"cpu", a.precision, threads}));
    const double load_s = std::chrono::duration<double>(clock::now() - t0).count();
    const auto after_load = read_resident_memory();
    out["family"] = m->arch().family;
    nlohmann::ordered_json run{{"threads", threads}, {"load_s", load_s}, {"rss_after_load_bytes", after_load.current}};
    run["results"] = nlohmann::ordered_json::array();
    for (const auto n : a.prompt_tokens) {
      const std::vector<std::int32_t> p(prompt.begin(), prompt.begin() + n);
      const auto t = time_prompt(*m, p, a.decode, a.repeat);
      const double prefill_tps = double(n) / t.prefill_s;
      const double decode_tps = a.decode > 0 ? double(a.decode) / t.decode_s : 0.0;
      run["results"].push_back({{"prompt_tokens", n},
                                {"decode_tokens", a.decode},
                                {"prefill_s", t.prefill_s},
                                {"prefill_tok_s", prefill_tps},
                                {"decode_s", a.decode > 0 ? t.decode_s : 0.0},
                                {"decode_tok_s", decode_tps},
                                {"kv_cache_bytes", t.kv_cache_bytes},
                                {"generated", t.generated},
                                {"deterministic", t.deterministic}});
      rows.push_back({std::to_string(threads), std::to_string(n), fmt::format("{:.1f}", prefill_tps),
                      std::to_string(a.decode), fmt::format("{:.1f}", decode_tps), fmt::format("{:.2f}", load_s)});
    }
    if (ti == 0 && !a.logits_out.empty()) {  // the first prompt, every position
      auto cache = m->new_cache(a.prompt_tokens.front());
      const std::vector<std::int32_t> p(prompt.begin(), prompt.begin() + a.prompt_tokens.front());
      write_npy(a.logits_out, m->forward(p, cache, forward_options{.all_logits = true}).logits);
      out["logits_out"] = a.logits_out;
    }
    const auto mem = read_resident_memory();
    run["rss_bytes"] = mem.current;
    run["peak_rss_bytes"] = mem.peak;  // of the process so far: run one thread count per process for a clean peak
    out["runs"].push_back(std::move(run));
  }
  out["prompt_ids"] = prompt;
  if (a.json) {
    fmt::print("{}\n", out.dump());
    return 0;
  }
  print_table({"threads", "prompt", "prefill tok/s", "decode", "decode tok/s", "load s"}, rows);
  const auto mem = read_resident_memory();
  fmt::print("{} ({}): weights on disk {:.1f} MB, peak resident {:.1f} MB\n", a.model, a.precision,
             double(out["weight_bytes_on_disk"].get<std::int64_t>()) / 1e6, double(mem.peak) / 1e6);
  return 0;
}

class bench_command : public command {
 public:
  void add(CLI::App& app) override {
    sub_ = app.add_subcommand("bench", "CPU load time, prefill and decode tok/s, resident memory");
    sub_->add_option("model", a_.model, "checkpoint folder, .gguf file or Hugging Face id")
        ->required()
        ->transform(model_name);
    sub_->add_option("--prompt-tokens", a_.prompt_tokens,
                     "prompt lengths to prefill, comma-separated (default 128,512; with --ids: its length)")
        ->delimiter(',')
        ->check(CLI::Range(std::int64_t(1), std::int64_t(1) << 20));
    sub_->add_option("--decode", a_.decode, "greedy tokens decoded after each prompt, one forward each")
        ->check(CLI::Range(std::int64_t(0), std::int64_t(1) << 20));
    sub_->add_option("--threads", a_.threads, "thread counts, comma-separated; 0: every core (default 0)")
        ->delimiter(',')
        ->check(CLI::Range(0, 1 << 16));
    sub_->add_option("--precision", a_.precision, "weights: stored (default) or fp32")
        ->check(CLI::IsMember({"stored", "fp32"}));
    sub_->add_option("--repeat", a_.repeat, "runs per measurement; the best is reported")->check(CLI::Range(1, 1000));
    sub_->add_option("--ids", a_.ids_file,
                     "file of prompt token ids (comma or space separated), repeated to each length (default: a "
                     "built-in text through the model's tokenizer)")
        ->check(CLI::ExistingFile);
    sub_->add_option("--logits-out", a_.logits_out,
                     "write the fp32 logits at every position of the first prompt to this .npy file");
    sub_->add_flag("--json", a_.json, "print one JSON object instead of a table");
  }

  int run() override { return bench(a_); }

 private:
  bench_args a_;
};

}  // namespace nexus::cli
