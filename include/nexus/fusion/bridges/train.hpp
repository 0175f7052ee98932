// Training loop for small trainable modules (bridges) on the CPU: AdamW with decoupled weight decay,
// linear warm-up then cosine decay, global-norm gradient clipping, minibatches in an order fixed by
// a seed, held-out evaluation keeping the best parameters, checkpoints and resume.
//
// Deterministic: the batch of step s is a function of (seed, s) alone and every update is a fixed
// sequence of floating-point operations, so the same seed gives bit-identical weights, and a run
// resumed from a checkpoint gives the weights of the uninterrupted run (the checkpoint holds the
// parameters, both Adam moments, the best parameters and the curve so far).
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/core/error.hpp"
#include "nexus/fusion/features/feature_store.hpp"
#include "nexus/io/safetensors.hpp"
#include "nexus/io/safetensors_writer.hpp"

namespace nexus::fusion {

/// A trainable tensor: its values, its gradient (same size) and whether weight decay applies.
struct param_ref {
  std::string name;
  std::span<float> value, grad;
  bool decay = true;  // weights decay; biases and norm parameters usually not
};

struct train_options {
  std::int64_t steps = 1000;
  std::int64_t batch = 64;
  double lr = 1e-3;
  std::int64_t warmup = 50;   // steps of linear warm-up from lr / warmup to lr
  double min_lr_ratio = 0.1;  // the cosine decays to lr · min_lr_ratio at the last step
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.01;  // decoupled (AdamW): p ← p − lr · wd · p
  double clip = 1.0;           // global gradient norm cap; 0: none
  std::uint64_t seed = 0;
  std::int64_t eval_every = 50;       // held-out loss every this many steps (and at 0 and the end)
  std::int64_t checkpoint_every = 0;  // 0: no checkpoints
  std::filesystem::path checkpoint;   // the checkpoint file; resumed from when it exists
  bool restore_best = true;           // end with the parameters best on held-out data
};

/// lr at step s (0-based): linear warm-up over `warmup` steps, then cosine to lr · min_lr_ratio.
inline double learning_rate(const train_options& o, std::int64_t s) {
  if (s < o.warmup) return o.lr * double(s + 1) / double(o.warmup);
  const double span = double(std::max<std::int64_t>(1, o.steps - o.warmup - 1));
  const double t = std::min(1.0, double(s - o.warmup) / span);
  const double low = o.lr * o.min_lr_ratio;
  return low + (o.lr - low) * 0.5 * (1.0 + std::cos(std::numbers::pi * t));
}

/// splitmix64: a small, fully specified generator (the standard library's distributions are not).
inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// A permutation of 0..n-1 from (seed, epoch): Fisher–Yates with unbiased draws.
inline std::vector<std::int64_t> epoch_order(std::uint64_t seed, std::int64_t epoch, std::int64_t n) {
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) p[std::size_t(i)] = i;
  std::uint64_t state = seed * 0x632be59bd9b4e019ull + std::uint64_t(epoch) * 0x9e3779b97f4a7c15ull + 1;
  for (std::int64_t i = n - 1; i > 0; --i) {
    const std::uint64_t bound = std::uint64_t(i + 1), limit = ~std::uint64_t(0) - (~std::uint64_t(0) % bound);
    std::uint64_t r;
    do r = splitmix64(state);
    while (r >= limit);
    std::swap(p[std::size_t(i)], p[std::size_t(r % bound)]);
  }
  return p;
}

/// The examples of step s: positions s·batch .. s·batch + batch − 1 of the concatenated epoch orders.
class batch_order {
 public:
  batch_order(std::uint64_t seed, std::int64_t n, std::int64_t batch) : seed_(seed), n_(n), batch_(batch) {
    if (n <= 0) throw usage_error("training", "no training examples");
    if (batch <= 0) throw usage_error("--batch", "must be positive");
  }
  std::vector<std::int64_t> at(std::int64_t step) {
    std::vector<std::int64_t> out;
    for (std::int64_t g = step * batch_; g < (step + 1) * batch_; ++g) {
      const std::int64_t e = g / n_;
      if (e != epoch_) order_ = epoch_order(seed_, epoch_ = e, n_);
      out.push_back(order_[std::size_t(g % n_)]);
    }
    return out;
  }

 private:
  std::uint64_t seed_;
  std::int64_t n_, batch_, epoch_ = -1;
  std::vector<std::int64_t> order_;
};

/// Scales the gradients so that their global L2 norm is at most `clip` (as torch's clip_grad_norm_:
/// factor clip / (norm + 1e-6) when below 1). Returns the norm before clipping.
inline double clip_global_norm(const std::vector<param_ref>& params, double clip) {
  double ss = 0;
  for (const auto& p : params)
    for (const float g : p.grad) ss += double(g) * double(g);
  const double norm = std::sqrt(ss);
  if (clip > 0) {
    const double f = clip / (norm + 1e-6);
    if (f < 1)
      for (const auto& p : params)
        for (float& g : p.grad) g = float(double(g) * f);
  }
  return norm;
}

/// AdamW with decoupled weight decay (torch.optim.AdamW's update, computed in double per element).
class adamw {
 public:
  explicit adamw(const std::vector<param_ref>& params) {
    for (const auto& p : params) {
      m_.emplace_back(p.value.size(), 0.0f);
      v_.emplace_back(p.value.size(), 0.0f);
    }
  }
  /// One update at step t (1-based: the bias corrections use it) with learning rate lr.
  void step(const std::vector<param_ref>& params, const train_options& o, std::int64_t t, double lr) {
    const double c1 = 1 - std::pow(o.beta1, double(t)), c2 = 1 - std::pow(o.beta2, double(t));
    for (std::size_t i = 0; i < params.size(); ++i) {
      auto& p = params[i];
      const double decay = p.decay ? 1 - lr * o.weight_decay : 1.0;
      for (std::size_t j = 0; j < p.value.size(); ++j) {
        const double g = p.grad[j];
        const double m = o.beta1 * m_[i][j] + (1 - o.beta1) * g, v = o.beta2 * v_[i][j] + (1 - o.beta2) * g * g;
        m_[i][j] = float(m);
        v_[i][j] = float(v);
        p.value[j] = float(double(p.value[j]) * decay - lr * (m / c1) / (std::sqrt(v / c2) + o.eps));
      }
    }
  }
  std::vector<std::vector<float>>& first_moments() { return m_; }
  std::vector<std::vector<float>>& second_moments() { return v_; }

 private:
  std::vector<std::vector<float>> m_, v_;
};

struct curve_point {
  std::int64_t step = 0;  // updates done
  double train = NAN;     // mean training loss of the steps since the previous point (NaN at step 0)
  double held_out = NAN;  // held-out loss with the parameters after `step` updates
};

struct train_progress {
  std::int64_t step = 0, steps = 0;
  double train = NAN, held_out = NAN, best = NAN, lr = 0, seconds = 0;
};

struct train_result {
  std::vector<curve_point> curve;
  double initial_held_out = NAN, best_held_out = NAN;
  std::int64_t best_step = 0;
  std::int64_t resumed_from = 0;  // steps already done by the checkpoint resumed (0: a fresh run)
  bool complete = false;          // false: stopped by the stop hook
  double seconds = 0;
};

/// What the loop trains: its parameters, the mean loss of a batch of training examples (adding
/// dL/dθ to the gradients, which the loop zeroes before), and the held-out loss (no gradients).
struct train_problem {
  std::vector<param_ref> params;
  std::int64_t examples = 0;  // training examples, indexed 0..examples-1
  std::function<double(std::span<const std::int64_t>)> batch_loss;
  std::function<double()> held_out_loss;
  nlohmann::ordered_json identity;  // what else a checkpoint must match to be resumed (data, objective, ...)
};

struct train_hooks {
  std::function<void(const train_progress&)> progress;
  /// Called after each update with the number of updates done; true stops there (as if killed).
  std::function<bool(std::int64_t)> stop;
};

namespace detail {

inline nlohmann::ordered_json train_identity(const train_problem& pr, const train_options& o) {
  nlohmann::ordered_json params = nlohmann::ordered_json::array();
  for (const auto& p : pr.params) params.push_back({{"name", p.name}, {"size", p.value.size()}, {"decay", p.decay}});
  return {{"format", "nexus.train_checkpoint"},
          {"steps", o.steps},
          {"batch", o.batch},
          {"lr", o.lr},
          {"warmup", o.warmup},
          {"min_lr_ratio", o.min_lr_ratio},
          {"betas", {o.beta1, o.beta2}},
          {"eps", o.eps},
          {"weight_decay", o.weight_decay},
          {"clip", o.clip},
          {"seed", o.seed},
          {"eval_every", o.eval_every},
          {"examples", pr.examples},
          {"params", params},
          {"problem", pr.identity}};
}

inline std::vector<std::byte> float_bytes(std::span<const float> v) {
  const auto b = std::as_bytes(v);
  return {b.begin(), b.end()};
}

}  // namespace detail

/// Runs (or resumes from o.checkpoint) the training of `pr`. The parameters end as the best on
/// held-out data (o.restore_best) or as after the last step.
inline train_result train(train_problem& pr, const train_options& o, const train_hooks& hooks = {}) {
  using clock = std::chrono::steady_clock;
  const auto started = clock::now();
  if (o.steps < 0) throw usage_error("--steps", "must not be negative");
  if (o.eval_every <= 0) throw usage_error("--eval-every", "must be positive");
  if (!(o.lr > 0)) throw usage_error("--lr", "must be positive");
  if (!pr.batch_loss || !pr.held_out_loss) throw usage_error("training", "no loss functions given");
  adamw opt(pr.params);
  batch_order order(o.seed, pr.examples, o.batch);
  const auto identity = detail::train_identity(pr, o);
  train_result res;
  std::vector<std::vector<float>> best;
  for (const auto& p : pr.params) best.emplace_back(p.value.begin(), p.value.end());
  double train_sum = 0;
  std::int64_t train_count = 0, step = 0;

  auto save = [&] {
    std::vector<std::vector<std::byte>> keep;
    std::vector<tensor_to_write> t;
    auto add = [&](const std::string& name, std::span<const float> v) {
      keep.push_back(detail::float_bytes(v));
      t.push_back({name, dtype::f32, {std::int64_t(v.size())}, keep.back()});
    };
    keep.reserve(4 * pr.params.size());
    for (std::size_t i = 0; i < pr.params.size(); ++i) {
      add("value." + pr.params[i].name, pr.params[i].value);
      add("adam_m." + pr.params[i].name, opt.first_moments()[i]);
      add("adam_v." + pr.params[i].name, opt.second_moments()[i]);
      add("best." + pr.params[i].name, best[i]);
    }
    nlohmann::ordered_json curve = nlohmann::ordered_json::array();
    for (const auto& c : res.curve) curve.push_back({c.step, c.train, c.held_out});
    nlohmann::ordered_json state = {{"step", step},
                                    {"train_sum", train_sum},
                                    {"train_count", train_count},
                                    {"best_held_out", res.best_held_out},
                                    {"best_step", res.best_step},
                                    {"initial_held_out", res.initial_held_out},
                                    {"curve", curve}};
    // JSON numbers are written in their shortest round-trip form: the doubles read back exactly.
    write_file_atomically(o.checkpoint, serialize_safetensors(t, {{"format", "nexus.train_checkpoint"},
                                                                  {"identity", identity.dump()},
                                                                  {"state", state.dump(-1, ' ', false)}}));
  };
  auto load = [&] {
    const safetensors_file f(o.checkpoint.string());
    const auto& meta = f.metadata();
    const auto where = o.checkpoint.string();
    if (!meta.count("format") || meta.at("format") != "nexus.train_checkpoint" || !meta.count("identity") ||
        !meta.count("state"))
      throw usage_error(where, "not a nexus training checkpoint");
    const auto saved = nlohmann::ordered_json::parse(meta.at("identity"));
    for (const auto& [key, value] : identity.items())
      if (!saved.contains(key) || saved[key] != value)
        throw usage_error(where, "a checkpoint of another run (" + key + " differs): remove it or change the path");
    auto read = [&](const std::string& name, std::span<float> dst) {
      const auto v = f.tensor(name);
      if (v.type != dtype::f32 || v.data.size() != dst.size_bytes()) throw usage_error(where, name + " mis-sized");
      std::memcpy(dst.data(), v.data.data(), dst.size_bytes());
    };
    for (std::size_t i = 0; i < pr.params.size(); ++i) {
      read("value." + pr.params[i].name, pr.params[i].value);
      read("adam_m." + pr.params[i].name, opt.first_moments()[i]);
      read("adam_v." + pr.params[i].name, opt.second_moments()[i]);
      read("best." + pr.params[i].name, best[i]);
    }
    const auto s = nlohmann::ordered_json::parse(meta.at("state"));
    step = s["step"];
    train_sum = s["train_sum"];
    train_count = s["train_count"];
    auto num = [](const nlohmann::ordered_json& j) { return j.is_null() ? NAN : j.get<double>(); };
    res.best_held_out = num(s["best_held_out"]);
    res.best_step = s["best_step"];
    res.initial_held_out = num(s["initial_held_out"]);
    for (const auto& c : s["curve"]) res.curve.push_back({c[0].get<std::int64_t>(), num(c[1]), num(c[2])});
    res.resumed_from = step;
  };

  train_progress prog;
  prog.steps = o.steps;
  auto evaluate = [&] {
    const double h = pr.held_out_loss();
    const double t = train_count ? train_sum / double(train_count) : NAN;
    res.curve.push_back({step, t, h});
    train_sum = 0;
    train_count = 0;
    if (step == 0) res.initial_held_out = h;
    if (!(h >= res.best_held_out)) {  // also when best is still NaN
      res.best_held_out = h;
      res.best_step = step;
      for (std::size_t i = 0; i < pr.params.size(); ++i)
        std::copy(pr.params[i].value.begin(), pr.params[i].value.end(), best[i].begin());
    }
    prog.held_out = h;
    prog.best = res.best_held_out;
    if (!std::isnan(t)) prog.train = t;
  };

  if (!o.checkpoint.empty() && std::filesystem::exists(o.checkpoint)) load();
  if (step == 0 && res.curve.empty()) evaluate();
  while (step < o.steps) {
    for (const auto& p : pr.params) std::fill(p.grad.begin(), p.grad.end(), 0.0f);
    const auto idx = order.at(step);
    const double loss = pr.batch_loss(idx);
    if (!std::isfinite(loss))
      throw usage_error("training",
                        "loss is " + std::to_string(loss) + " at step " + std::to_string(step) + " (try a lower --lr)");
    clip_global_norm(pr.params, o.clip);
    const double lr = learning_rate(o, step);
    opt.step(pr.params, o, step + 1, lr);
    ++step;
    train_sum += loss;
    ++train_count;
    if (step % o.eval_every == 0 || step == o.steps) evaluate();
    if (!o.checkpoint.empty() && o.checkpoint_every > 0 && (step % o.checkpoint_every == 0 || step == o.steps)) save();
    prog.step = step;
    prog.lr = lr;
    prog.seconds = std::chrono::duration<double>(clock::now() - started).count();
    if (hooks.progress) hooks.progress(prog);
    if (hooks.stop && hooks.stop(step)) {
      res.seconds = prog.seconds;
      return res;
    }
  }
  if (o.restore_best)
    for (std::size_t i = 0; i < pr.params.size(); ++i)
      std::copy(best[i].begin(), best[i].end(), pr.params[i].value.begin());
  res.complete = true;
  res.seconds = std::chrono::duration<double>(clock::now() - started).count();
  return res;
}

}  // namespace nexus::fusion
