// A bridge: a small trainable map between two teachers' spaces (or into a host teacher), one template
// over the kinds of nexus/fusion/bridges/kinds.hpp. The template owns what all kinds share: parameters
// as named tensors with gradients, the optional linear skip path, shape checks, forward with a tape and
// backward, the start at a closed-form map, and the file (safetensors, its traits in the metadata).
// The scalar is a template parameter: fp32 to train and run, fp64 for the gradient checks.
#pragma once

#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/fusion/bridges/kinds.hpp"
#include "nexus/io/safetensors.hpp"
#include "nexus/io/safetensors_writer.hpp"
#include "nexus/model/model.hpp"

namespace nexus::fusion {

inline constexpr std::string_view bridge_format = "nexus.bridge";
inline constexpr int bridge_version = 1;

/// The traits of a bridge as its file's metadata stores them (JSON).
inline nlohmann::ordered_json traits_json(std::string_view kind, const bridge_dims& d) {
  return {{"kind", kind},     {"d_in", d.d_in},       {"d_out", d.d_out}, {"hidden", d.hidden},
          {"heads", d.heads}, {"queries", d.queries}, {"depth", d.depth}, {"d_context", d.d_context},
          {"rank", d.rank},   {"alpha", d.alpha},     {"skip", d.skip}};
}

/// What a bridge file says about itself: kind and dimensions (checked: format, version, JSON).
struct bridge_header {
  std::string kind;
  bridge_dims dims;
};

inline bridge_header read_bridge_header(const safetensors_file& f) {
  using c = bridge_error::code;
  const auto& where = f.path();
  const auto& meta = f.metadata();
  const auto get = [&](const char* key) -> const std::string* {
    const auto it = meta.find(key);
    return it == meta.end() ? nullptr : &it->second;
  };
  if (const auto* format = get("format"); !format || *format != bridge_format)
    throw bridge_error(c::not_a_bridge, where,
                       "metadata format is " + (format ? "'" + *format + "'" : std::string("absent")) + ", not '" +
                           std::string(bridge_format) + "'");
  if (const auto* v = get("version"); !v || *v != std::to_string(bridge_version))
    throw bridge_error(c::bad_version, where,
                       "version " + (v ? "'" + *v + "'" : std::string("absent")) + ", this reader knows " +
                           std::to_string(bridge_version));
  const auto* text = get("traits");
  if (!text) throw bridge_error(c::traits_invalid, where + ": traits", "metadata has no traits");
  const auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) throw bridge_error(c::traits_invalid, where + ": traits", "not a JSON object");
  bridge_header h;
  const auto field = [&](const char* key) -> const nlohmann::json& {
    if (!j.contains(key)) throw bridge_error(c::traits_invalid, where + ": traits." + key, "missing");
    return j[key];
  };
  const auto& kind = field("kind");
  if (!kind.is_string()) throw bridge_error(c::traits_invalid, where + ": traits.kind", "not a string");
  h.kind = kind.get<std::string>();
  for (auto [key, dst] : {std::pair{"d_in", &h.dims.d_in},
                          {"d_out", &h.dims.d_out},
                          {"hidden", &h.dims.hidden},
                          {"heads", &h.dims.heads},
                          {"queries", &h.dims.queries},
                          {"depth", &h.dims.depth},
                          {"d_context", &h.dims.d_context},
                          {"rank", &h.dims.rank}}) {
    const auto& v = field(key);
    // Bounds that keep every count below 2^62: widths up to 2^24, depth up to 1024.
    const std::int64_t max = std::string_view(key) == "depth" ? 1024 : std::int64_t(1) << 24;
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > max)
      throw bridge_error(c::traits_invalid, where + ": traits." + key,
                         "must be an integer in 0 .. " + std::to_string(max) + ", got " + v.dump());
    *dst = v.get<std::int64_t>();
  }
  if (!field("alpha").is_number()) throw bridge_error(c::traits_invalid, where + ": traits.alpha", "not a number");
  h.dims.alpha = j["alpha"].get<double>();
  if (!field("skip").is_boolean()) throw bridge_error(c::traits_invalid, where + ": traits.skip", "not a boolean");
  h.dims.skip = j["skip"].get<bool>();
  return h;
}

/// The header of the bridge file at `path` (to dispatch on its kind: with_bridge_kind).
inline bridge_header read_bridge_header(const std::filesystem::path& path) {
  try {
    return read_bridge_header(safetensors_file(path.string()));
  } catch (const safetensors_error& e) {
    throw bridge_error(bridge_error::code::not_a_bridge, path.string(),
                       std::string("not a safetensors file: ") + e.what());
  }
}

template <class Kind, class S = float>
class bridge {
 public:
  using kind_type = Kind;
  using scalar = S;

  /// A bridge of these dimensions, initialised from `seed` (the same seed: the same parameters).
  explicit bridge(const bridge_dims& d, std::uint64_t seed = 0) : d_(d) { declare(d, params_, seed); }

  /// The number of parameter values these dims imply (checked as the constructor checks them), without
  /// allocating them.
  static std::int64_t parameter_count(const bridge_dims& d) {
    parameter_list<S> shapes(false);
    declare(d, shapes, 0);
    std::int64_t n = 0;
    for (const auto& p : shapes) {
      std::int64_t e = 1;
      for (const auto x : p.shape) e *= x;
      n += e;
    }
    return n;
  }

  static constexpr std::string_view kind() { return Kind::name; }
  const bridge_dims& dims() const { return d_; }
  /// Output rows for n input rows: n (per-row kinds) or the queries / latents.
  std::int64_t output_rows(std::int64_t n) const { return Kind::per_row ? n : d_.queries; }

  /// The parameters in declaration order (name, shape, value, grad, frozen): what an optimizer walks.
  parameter_list<S>& parameters() { return params_; }
  const parameter_list<S>& parameters() const { return params_; }
  void zero_grad() {
    for (auto& p : params_) std::fill(p.grad.begin(), p.grad.end(), S(0));
  }

  /// Runs the bridge on rows x [n, d_in] (and, for kinds that read it, context [m, d_context]) and keeps
  /// what backward() needs; returns [output_rows(n), d_out].
  std::vector<S> forward(std::span<const S> x, std::span<const S> context = {}) {
    x_.assign(x.begin(), x.end());
    c_.assign(context.begin(), context.end());
    return run(x_, c_, tape_);
  }
  /// The same without keeping anything (const: callable from several threads at once).
  std::vector<S> apply(std::span<const S> x, std::span<const S> context = {}) const {
    typename Kind::template tape<S> t;
    return run(x, context, t);
  }

  /// Given dy, the loss's gradient with respect to the last forward()'s output, adds the parameters'
  /// gradients and returns the input's gradient [n, d_in] (the context's into *dcontext when given).
  std::vector<S> backward(std::span<const S> dy, std::vector<S>* dcontext = nullptr) {
    const std::int64_t n = rows_of(x_, d_.d_in, "x"), m = Kind::uses_context ? rows_of(c_, d_.d_context, "context") : 0;
    if (std::int64_t(dy.size()) != output_rows(n) * d_.d_out)
      throw usage_error("bridge backward", "dy has " + std::to_string(dy.size()) + " values, the output " +
                                               std::to_string(output_rows(n) * d_.d_out));
    std::vector<S> dx(x_.size()), dc(c_.size());
    Kind::backward(d_, params_, x_.data(), n, c_.data(), m, tape_, dy.data(), dx.data(),
                   Kind::uses_context && dcontext ? dc.data() : nullptr);
    if constexpr (Kind::per_row && !Kind::uses_context)
      if (d_.skip)
        bridge_ops::linear_backward(x_.data(), dy.data(), n, d_.d_in, params_.v("skip.weight"), d_.d_out, dx.data(),
                                    params_.g("skip.weight"), params_.g("skip.bias"));
    if (dcontext) *dcontext = std::move(dc);
    return dx;
  }

  /// Starts the bridge exactly at the affine map y = W x + b (W [d_out, d_in] row-major, b [d_out]; e.g. a
  /// closed-form fit): the skip path where there is one (the body's last layer zeroed), else the kind's own
  /// affine layer where it has one (Kind::affine_layer: linear's map, LoRA's frozen base with B zero).
  void start_at(std::span<const double> W, std::span<const double> b) {
    if (std::int64_t(W.size()) != d_.d_out * d_.d_in || std::int64_t(b.size()) != d_.d_out)
      throw usage_error("bridge start_at", "map of " + std::to_string(W.size()) + " + " + std::to_string(b.size()) +
                                               " values for a bridge " + std::to_string(d_.d_in) + " -> " +
                                               std::to_string(d_.d_out));
    std::string target;
    if (d_.skip) target = "skip";
    else if constexpr (requires { Kind::affine_layer; }) target = Kind::affine_layer;  // the kind's own map
    else
      throw usage_error("bridge start_at", std::string(Kind::name) + " starts at an affine map only with a skip path");
    Kind::zero_last(params_);
    auto& w = params_.at(target + ".weight").value;
    auto& bias = params_.at(target + ".bias").value;
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = S(W[i]);
    for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = S(b[i]);
  }
  /// The same from fusion::affine_map (nexus/fusion/maps/closed_form.hpp: d_in, d_out, w, b).
  template <class Map>
  requires requires(const Map& m) {
    std::span<const double>(m.w);
    std::span<const double>(m.b);
    m.d_in + m.d_out;
  }
  void start_at(const Map& m) {
    if (m.d_in != d_.d_in || m.d_out != d_.d_out)
      throw usage_error("bridge start_at", "map " + std::to_string(m.d_in) + " -> " + std::to_string(m.d_out) +
                                               " for a bridge " + std::to_string(d_.d_in) + " -> " +
                                               std::to_string(d_.d_out));
    start_at(std::span<const double>(m.w), std::span<const double>(m.b));
  }

  /// Writes the bridge as safetensors: its parameters (F32, in declaration order) and the metadata
  /// format=nexus.bridge, version, kind and traits (the dims as JSON).
  void save(const std::filesystem::path& path) const {
    std::vector<std::vector<float>> values;
    std::vector<tensor_to_write> tensors;
    for (const auto& p : params_) values.emplace_back(p.value.begin(), p.value.end());
    std::size_t i = 0;
    for (const auto& p : params_) {
      const auto& v = values[i++];
      tensors.push_back({p.name, dtype::f32, p.shape, std::as_bytes(std::span(v))});
    }
    write_safetensors(path.string(), tensors,
                      {{"format", std::string(bridge_format)},
                       {"version", std::to_string(bridge_version)},
                       {"kind", std::string(Kind::name)},
                       {"traits", traits_json(Kind::name, d_).dump()}});
  }

  /// Reads a bridge written by save(): a file of another format, version or kind, impossible traits, or
  /// parameters missing, extra or mis-shaped are a bridge_error naming the file and what.
  static bridge load(const std::filesystem::path& path) {
    using c = bridge_error::code;
    const auto where = path.string();
    std::optional<safetensors_file> f;
    try {
      f.emplace(where);
    } catch (const safetensors_error& e) {
      throw bridge_error(c::not_a_bridge, where, std::string("not a safetensors file: ") + e.what());
    }
    const auto h = read_bridge_header(*f);
    if (h.kind != Kind::name)
      throw bridge_error(c::kind_mismatch, where, "a " + h.kind + " bridge, not " + std::string(Kind::name));
    std::int64_t count = 0;
    try {
      count = parameter_count(h.dims);
    } catch (const usage_error& e) {
      throw bridge_error(c::traits_invalid, where + ": traits", e.what());
    }
    if (std::uint64_t(count) * 4 > std::filesystem::file_size(path))
      throw bridge_error(c::traits_invalid, where + ": traits",
                         "imply " + std::to_string(count) + " parameters, more than the file holds");
    std::optional<bridge> b;
    b.emplace(h.dims, 0);
    for (auto& p : b->params_) {
      if (!f->contains(p.name)) throw bridge_error(c::tensor_missing, where + ": " + p.name, "parameter missing");
      const auto t = f->tensor(p.name);
      if (t.type != dtype::f32) throw bridge_error(c::tensor_invalid, where + ": " + p.name, "dtype is not F32");
      if (t.shape != p.shape)
        throw bridge_error(c::tensor_invalid, where + ": " + p.name, "shape differs from the traits'");
      std::vector<float> v(p.value.size());
      std::memcpy(v.data(), t.data.data(), v.size() * 4);
      for (std::size_t i = 0; i < v.size(); ++i) p.value[i] = S(v[i]);
    }
    for (const auto& name : f->names())
      if (!b->params_.contains(name))
        throw bridge_error(c::tensor_unexpected, where + ": " + name, "not a parameter of this " + h.kind + " bridge");
    return std::move(*b);
  }

 private:
  static void declare(const bridge_dims& d, parameter_list<S>& ps, std::uint64_t seed) {
    bridge_detail::need(d.d_in > 0, "d_in", "must be positive");
    bridge_detail::need(d.d_out > 0, "d_out", "must be positive");
    Kind::check(d);
    if (d.skip && !(Kind::per_row && !Kind::uses_context))
      throw usage_error("bridge_dims.skip",
                        "a skip path needs a per-row kind without context, not " + std::string(Kind::name));
    bridge_rng rng(seed);
    Kind::declare(d, ps, rng);
    if (d.skip) {  // the body's last layer starts at zero, so the bridge starts at the skip map
      bridge_detail::add_linear(ps, rng, "skip", d.d_out, d.d_in);
      Kind::zero_last(ps);
    }
  }

  std::int64_t rows_of(std::span<const S> v, std::int64_t width, const char* what) const {
    if (width <= 0 || v.size() % std::size_t(width) != 0 || v.empty())
      throw usage_error(
          std::string("bridge ") + std::string(Kind::name),
          std::string(what) + " has " + std::to_string(v.size()) + " values, not rows of " + std::to_string(width));
    return std::int64_t(v.size()) / width;
  }

  std::vector<S> run(std::span<const S> x, std::span<const S> context, typename Kind::template tape<S>& t) const {
    const std::int64_t n = rows_of(x, d_.d_in, "x");
    std::int64_t m = 0;
    if constexpr (Kind::uses_context) m = rows_of(context, d_.d_context, "context");
    std::vector<S> y(std::size_t(output_rows(n) * d_.d_out));
    Kind::forward(d_, params_, x.data(), n, context.data(), m, t, y.data());
    if constexpr (Kind::per_row && !Kind::uses_context)
      if (d_.skip) {
        std::vector<S> s(y.size());
        bridge_ops::linear(x.data(), n, d_.d_in, params_.v("skip.weight"), params_.v("skip.bias"), d_.d_out, s.data());
        for (std::size_t i = 0; i < y.size(); ++i) y[i] += s[i];
      }
    return y;
  }

  bridge_dims d_;
  parameter_list<S> params_;
  std::vector<S> x_, c_;  // the last forward's inputs
  typename Kind::template tape<S> tape_;
};

/// A residual hook (forward_options::hook) that runs a gated adapter on the host's residual stream after
/// `layer`, attending to `context` ([m, d_context] rows, kept by reference: they must outlive the hook).
inline residual_hook adapter_hook(const bridge<gated_adapter_kind, float>& adapter, std::span<const float> context,
                                  std::int64_t layer) {
  return {layer, [&adapter, context](std::int64_t, float* rows, std::int64_t n, std::int64_t hidden) {
            if (hidden != adapter.dims().d_in)
              throw usage_error("adapter hook", "host hidden size " + std::to_string(hidden) + ", adapter d_in " +
                                                    std::to_string(adapter.dims().d_in));
            const auto y = adapter.apply(std::span<const float>(rows, std::size_t(n * hidden)), context);
            std::copy(y.begin(), y.end(), rows);
          }};
}

}  // namespace nexus::fusion
