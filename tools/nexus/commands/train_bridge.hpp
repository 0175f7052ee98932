// `nexus train-bridge`: trains a linear or MLP bridge from teacher A's layer i to teacher B's layer j
// on a feature store (nexus/fusion/bridges/train_bridge.hpp), starting from the closed-form ridge fit, keeping
// the parameters best on held-out data; loss curves as JSON and PNG; a progress line on a terminal.
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "../command.hpp"
#include "../options.hpp"
#include "../progress.hpp"
#include "nexus/chart/plot.hpp"
#include "nexus/fusion/bridges/train_bridge.hpp"
#include "nexus/fusion/maps/closed_form.hpp"

namespace nexus::cli {

struct train_bridge_args {
  std::string store, from, to, kind = "mlp", objective = "mse", init = "closed-form", out, head, checkpoint;
  std::int64_t hidden = 1024, steps = 500, batch = 64, warmup = 25, eval_every = 25, checkpoint_every = 50;
  std::int64_t max_train = 4096, max_heldout = 1024;
  double lr = 1e-3, weight_decay = 0.01, clip = 1.0, min_lr_ratio = 0.1;
  std::uint64_t seed = 0;
  int threads = 0;
  bool quiet = false, json = false;
};

/// out.safetensors -> out (the stem beside it) for the curve files.
inline std::string output_stem(const std::string& out) {
  auto p = std::filesystem::path(out);
  return (p.parent_path() / p.stem()).string();
}

/// KL goes through B's head, which reads the residual stream after B's last layer: B's final norm and LM
/// head from --head, or from the checkpoint the store was made from.
inline fusion::frozen_head kl_head(const fusion::feature_store& store, const fusion::store_layer& to,
                                   const train_bridge_args& a) {
  const auto& tb = store.manifest()["identity"]["teachers"][to.teacher];
  const auto last = "layer" + std::to_string(tb["num_layers"].get<std::int64_t>() - 1);
  if (to.key != last)
    throw usage_error("--to", "KL through the head needs B's last layer (" + last + "), not " + to.key);
  std::string path = a.head;
  if (path.empty() && store.manifest().contains("sources"))
    path = store.manifest()["sources"]["teachers"][to.teacher].get<std::string>();
  if (path.empty() || !std::filesystem::exists(path))
    throw usage_error("--head", "B's checkpoint is needed for its head (not found: '" + path + "')");
  auto head = fusion::frozen_head::load(path, a.threads);
  if (head.hidden() != store.hidden_size(to.teacher) || head.vocab() != tb["vocab_size"].get<std::int64_t>())
    throw usage_error("--head", path + " is not the teacher of the store (hidden or vocabulary size differ)");
  return head;
}

/// The curves beside the bridge: OUT.curve.json (the run, its options and its loss curve) and OUT.curve.png.
inline void write_curves(const train_bridge_args& a, const fusion::train_result& r,
                         const nlohmann::ordered_json& closed, std::int64_t train_rows, std::int64_t heldout_rows) {
  const auto stem = output_stem(a.out);
  nlohmann::ordered_json curve = nlohmann::ordered_json::array();
  chart::line_series tr{"train", {}, {}}, ho{"held-out", {}, {}};
  for (const auto& c : r.curve) {
    curve.push_back({{"step", c.step}, {"train", c.train}, {"held_out", c.held_out}});
    if (std::isfinite(c.train)) tr.x.push_back(double(c.step)), tr.y.push_back(c.train);
    ho.x.push_back(double(c.step)), ho.y.push_back(c.held_out);
  }
  nlohmann::ordered_json report = {{"store", a.store},
                                   {"from", a.from},
                                   {"to", a.to},
                                   {"kind", a.kind},
                                   {"objective", a.objective},
                                   {"init", a.init},
                                   {"closed_form", closed},
                                   {"options",
                                    {{"steps", a.steps},
                                     {"batch", a.batch},
                                     {"lr", a.lr},
                                     {"warmup", a.warmup},
                                     {"min_lr_ratio", a.min_lr_ratio},
                                     {"weight_decay", a.weight_decay},
                                     {"clip", a.clip},
                                     {"seed", a.seed},
                                     {"hidden", a.kind == "mlp" ? a.hidden : 0}}},
                                   {"train_rows", train_rows},
                                   {"heldout_rows", heldout_rows},
                                   {"initial_held_out", r.initial_held_out},
                                   {"best_held_out", r.best_held_out},
                                   {"best_step", r.best_step},
                                   {"resumed_from", r.resumed_from},
                                   {"seconds", r.seconds},
                                   {"curve", curve}};
  std::ofstream(stem + ".curve.json") << report.dump(2) << "\n";
  chart::line_chart(stem + ".curve.png", {.title = a.kind + " bridge " + a.from + " -> " + a.to + ", " + a.objective,
                                          .x_label = "step",
                                          .y_label = a.objective + " loss",
                                          .series = {tr, ho},
                                          .log_y = false});
}

inline int train_bridge(const train_bridge_args& a) {
  using namespace nexus::fusion;
  const feature_store store(a.store);
  const auto from = parse_store_layer(store, a.from), to = parse_store_layer(store, a.to);
  const auto obj = parse_objective(a.objective);
  if (a.init != "closed-form" && a.init != "zero") throw usage_error("--init", "'" + a.init + "': closed-form or zero");
  if (const auto dir = std::filesystem::path(a.out).parent_path(); !dir.empty())
    std::filesystem::create_directories(dir);  // the bridge, its checkpoint and curves go there
  const heldout_split split(store);
  if (!split.usable()) throw usage_error(a.store, "one window of one document: nothing to hold out");

  std::optional<frozen_head> head;
  if (obj == objective::kl) head.emplace(kl_head(store, to, a));

  // The closed-form start: ridge on every training pair, λ chosen on the held-out pairs.
  const std::int64_t d_in = store.hidden_size(from.teacher), d_out = store.hidden_size(to.teacher);
  affine_map start = affine_map::zero(d_in, d_out);
  nlohmann::ordered_json closed;
  if (a.init == "closed-form") {
    store_pairs tp(store, from, to, split, split_part::train), hp(store, from, to, split, split_part::heldout);
    const auto fit = fit_ridge(accumulate(tp), accumulate(hp));
    start = fit.map;
    closed = {{"method", "ridge"}, {"lambda", fit.lambda}, {"heldout_r2", fit.heldout_r2}};
  }
  const auto train_rows = read_pairs(store, from, to, split, split_part::train, a.max_train);
  const auto held_rows = read_pairs(store, from, to, split, split_part::heldout, a.max_heldout);

  train_options o;
  o.steps = a.steps, o.batch = a.batch, o.lr = a.lr, o.warmup = a.warmup, o.min_lr_ratio = a.min_lr_ratio;
  o.weight_decay = a.weight_decay, o.clip = a.clip, o.seed = a.seed, o.eval_every = a.eval_every;
  o.checkpoint_every = a.checkpoint_every;
  o.checkpoint = a.checkpoint.empty() ? output_stem(a.out) + ".checkpoint.safetensors" : a.checkpoint;
  progress_line line(a.quiet);
  train_hooks hooks;
  if (line.on())
    hooks.progress = [&](const train_progress& p) {
      const double rate = p.seconds > 0 ? double(p.step) / p.seconds : 0;
      line.show(double(p.step) / double(std::max<std::int64_t>(1, p.steps)),
                fmt::format("step {}/{} | train {:.4f} | held-out {:.4f} (best {:.4f}) | lr {:.2e} | left {}", p.step,
                            p.steps, p.train, p.held_out, p.best, p.lr,
                            format_duration(rate > 0 ? double(p.steps - p.step) / rate : -1)));
    };

  auto run = [&](auto kind) {
    using K = decltype(kind);
    bridge_dims d{.d_in = d_in, .d_out = d_out};
    if constexpr (std::is_same_v<K, mlp_kind>) d.hidden = a.hidden, d.skip = true;
    bridge<K, float> br(d, a.seed);
    br.start_at(std::span<const double>(start.w), std::span<const double>(start.b));
    auto problem = bridge_problem(br, train_rows, held_rows, obj, head ? &*head : nullptr);
    problem.identity["store"] = store.manifest()["identity"]["corpus"];
    problem.identity["from"] = a.from;
    problem.identity["to"] = a.to;
    problem.identity["init"] = a.init;
    auto r = train(problem, o, hooks);
    line.finish();
    br.save(a.out);
    return r;
  };
  train_result r;
  if (a.kind == "linear") r = run(linear_kind{});
  else if (a.kind == "mlp") r = run(mlp_kind{});
  else throw usage_error("--kind", "'" + a.kind + "': linear or mlp");

  write_curves(a, r, closed, train_rows.rows, held_rows.rows);
  const auto stem = output_stem(a.out);
  if (a.json) {
    fmt::print("{}\n", nlohmann::ordered_json{{"from", a.from},
                                              {"to", a.to},
                                              {"kind", a.kind},
                                              {"objective", a.objective},
                                              {"train_pairs", train_rows.rows},
                                              {"heldout_pairs", held_rows.rows},
                                              {"heldout_at_start", r.initial_held_out},
                                              {"best_heldout", r.best_held_out},
                                              {"best_step", r.best_step},
                                              {"steps", a.steps},
                                              {"seconds", r.seconds},
                                              {"closed_form", closed},
                                              {"bridge", a.out},
                                              {"curves", {stem + ".curve.json", stem + ".curve.png"}}}
                           .dump(2));
    return 0;
  }
  fmt::print(
      "train-bridge {} -> {} ({} {}, {} train / {} held-out pairs): held-out {} {:.6g} at the start, best {:.6g} "
      "at step {} of {}; {:.1f} s\n",
      a.from, a.to, a.kind, a.objective, train_rows.rows, held_rows.rows, a.objective, r.initial_held_out,
      r.best_held_out, r.best_step, a.steps, r.seconds);
  fmt::print("wrote {}, {}.curve.json, {}.curve.png\n", a.out, stem, stem);
  return 0;
}

class train_bridge_command : public command {
 public:
  void add(CLI::App& app) override {
    sub_ = app.add_subcommand("train-bridge",
                              "Train a linear or MLP bridge between two teachers' layers on a feature store");
    sub_->add_option("--store", a_.store, "feature store folder (nexus extract)")
        ->required()
        ->check(CLI::ExistingDirectory);
    sub_->add_option("--from", a_.from, "A:i, teacher (index or name) and layer, e.g. 0:12")->required();
    sub_->add_option("--to", a_.to, "B:j, e.g. 1:-1 (KL: B's last layer)")->required();
    sub_->add_option("--kind", a_.kind, "linear or mlp")->check(CLI::IsMember({"linear", "mlp"}));
    sub_->add_option("--hidden", a_.hidden, "MLP hidden width")->check(CLI::Range(1, 1 << 20));
    sub_->add_option("--objective", a_.objective, "mse, cosine (hidden states) or kl (through B's head)")
        ->check(CLI::IsMember({"mse", "cosine", "kl"}));
    sub_->add_option("--init", a_.init, "closed-form (ridge, λ on held-out) or zero")
        ->check(CLI::IsMember({"closed-form", "zero"}));
    sub_->add_option("--head", a_.head, "B's checkpoint for its head (default: the store's source path)");
    sub_->add_option("--steps", a_.steps, "optimizer steps")->check(CLI::Range(std::int64_t(0), std::int64_t(1) << 30));
    sub_->add_option("--batch", a_.batch, "pairs per step")->check(CLI::Range(1, 1 << 20));
    sub_->add_option("--lr", a_.lr, "peak learning rate")->check(CLI::PositiveNumber);
    sub_->add_option("--warmup", a_.warmup, "linear warm-up steps")->check(CLI::Range(0, 1 << 30));
    sub_->add_option("--min-lr-ratio", a_.min_lr_ratio, "the cosine ends at lr × this")->check(CLI::Range(0.0, 1.0));
    sub_->add_option("--weight-decay", a_.weight_decay, "AdamW's decoupled weight decay")->check(CLI::Range(0.0, 10.0));
    sub_->add_option("--clip", a_.clip, "global gradient norm cap (0: none)")->check(CLI::Range(0.0, 1e9));
    sub_->add_option("--seed", a_.seed, "initialisation and batch order");
    sub_->add_option("--eval-every", a_.eval_every, "held-out loss every N steps")->check(CLI::Range(1, 1 << 30));
    sub_->add_option("--max-train", a_.max_train, "training pairs, evenly spaced over the store (0: all)")
        ->check(CLI::Range(std::int64_t(0), std::int64_t(1) << 40));
    sub_->add_option("--max-heldout", a_.max_heldout, "held-out pairs (0: all)")
        ->check(CLI::Range(std::int64_t(0), std::int64_t(1) << 40));
    sub_->add_option("--checkpoint", a_.checkpoint,
                     "checkpoint file, resumed when present (default OUT.checkpoint.safetensors)");
    sub_->add_option("--checkpoint-every", a_.checkpoint_every, "steps between checkpoints (0: none)")
        ->check(CLI::Range(0, 1 << 30));
    add_threads_option(*sub_, a_.threads);
    sub_->add_option("--out", a_.out, "the bridge, .safetensors (curves beside it: OUT.curve.json, .png)")->required();
    sub_->add_flag("--quiet", a_.quiet, "no progress line even on a terminal");
    sub_->add_flag("--json", a_.json, "print one JSON object at the end");
  }

  int run() override { return train_bridge(a_); }

 private:
  train_bridge_args a_;
};

}  // namespace nexus::cli
