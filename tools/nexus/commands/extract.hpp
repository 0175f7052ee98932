// `nexus extract`: several teachers over a corpus into a feature store (nexus/fusion/features/extract.hpp),
// with a progress line on a terminal (documents, tokens/s, time left) and nothing when piped.
#pragma once

#include <fmt/format.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../command.hpp"
#include "../options.hpp"
#include "../progress.hpp"
#include "nexus/fusion/features/extract.hpp"

namespace nexus::cli {

struct extract_args {
  std::vector<std::string> teachers, corpus;
  std::string layers = "-1", dtype = "bf16", out, shard_size = "64MiB", budget = "0";
  std::int64_t top_k = 0, context = 512, chunk_rows = 0;
  int threads = 0;
  bool quiet = false, json = false;
};

inline std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  for (std::size_t at = 0; at <= s.size();) {
    const auto comma = std::min(s.find(',', at), s.size());
    out.push_back(s.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

/// The library's options of the command's arguments.
inline fusion::extract_options extract_options_of(const extract_args& a) {
  fusion::extract_options o;
  for (const auto& t : a.teachers) o.teachers.emplace_back(t);
  for (const auto& c : a.corpus) o.corpus.emplace_back(c);
  o.layers = split_commas(a.layers);
  o.top_k = a.top_k;
  o.dtype = a.dtype;
  o.context = a.context;
  o.out = a.out;
  o.shard_size = fusion::parse_bytes(a.shard_size);
  o.budget = fusion::parse_bytes(a.budget);
  o.cpu.threads = a.threads;
  o.chunk_rows = a.chunk_rows;
  return o;
}

inline int extract_store(const extract_args& a) {
  auto o = extract_options_of(a);
  progress_line line(a.quiet);
  if (line.on())
    o.progress = [&](const fusion::extract_progress& p) {
      const double rate = p.seconds > 0 ? double(p.tokens_done) / p.seconds : 0;
      line.show(p.tokens ? double(p.tokens_done) / double(p.tokens) : 1,
                fmt::format("documents {}/{} | {:.0f} tok/s | left {}", p.documents_done, p.documents, rate,
                            format_duration(rate > 0 ? double(p.tokens - p.tokens_done) / rate : -1)));
    };
  const auto r = fusion::extract(o);
  line.finish();
  if (a.json) {
    fmt::print("{}\n", nlohmann::ordered_json{{"store", a.out},
                                              {"complete", r.complete},
                                              {"windows", r.windows},
                                              {"shards", r.shards},
                                              {"shards_resumed", r.shards_resumed},
                                              {"shards_written", r.shards_written},
                                              {"tokens_forwarded", r.tokens_forwarded},
                                              {"seconds", r.seconds},
                                              {"resident", r.resident}}
                           .dump(2));
    return r.complete ? 0 : 1;
  }
  fmt::print(
      "extract {}: {} windows in {} shards ({} already there, {} written); {} tokens in {:.1f} s ({:.0f} tok/s)\n",
      a.out, r.windows, r.shards, r.shards_resumed, r.shards_written, r.tokens_forwarded, r.seconds,
      r.seconds > 0 ? double(r.tokens_forwarded) / r.seconds : 0.0);
  fmt::print("{}\n", r.resident);
  return r.complete ? 0 : 1;
}

class extract_command : public command {
 public:
  void add(CLI::App& app) override {
    sub_ = app.add_subcommand(
        "extract",
        "Teachers' hidden states, token spans and top-k log-probabilities over a corpus, into a feature store");
    sub_->add_option("--teacher", a_.teachers,
                     "checkpoint folder, .gguf file or Hugging Face id (repeat for each teacher)")
        ->required()
        ->transform(model_name);
    sub_->add_option("--corpus", a_.corpus, "text files, folders of them, or .jsonl files with a \"text\" field")
        ->required()
        ->check(CLI::ExistingPath);
    sub_->add_option("--layers", a_.layers, "residual stream after these layers: e.g. 6,-1,final (-1: the last)");
    sub_->add_option("--topk", a_.top_k, "top-k next-token log-probabilities per token (0: none)")
        ->check(CLI::Range(0, 1 << 20));
    sub_->add_option("--dtype", a_.dtype, "hidden states as bf16 or f32")->check(CLI::IsMember({"bf16", "f32"}));
    sub_->add_option("--context", a_.context, "tokens per window")->check(CLI::Range(2, 1 << 20));
    sub_->add_option("--out", a_.out, "store folder (created; an existing store of the same run is resumed)")
        ->required();
    sub_->add_option("--shard-size", a_.shard_size, "size cap of a shard, e.g. 64MiB");
    sub_->add_option("--budget", a_.budget,
                     "most bytes of teacher weights resident at once, e.g. 1.5GiB (0: no limit)");
    add_threads_option(*sub_, a_.threads);
    sub_->add_option("--chunk-rows", a_.chunk_rows, "tokens per forward step (0: the backend's choice)")
        ->check(CLI::Range(0, 1 << 20));
    sub_->add_flag("--quiet", a_.quiet, "no progress line even on a terminal");
    sub_->add_flag("--json", a_.json, "print one JSON object at the end");
  }

  int run() override { return extract_store(a_); }

 private:
  extract_args a_;
};

}  // namespace nexus::cli
