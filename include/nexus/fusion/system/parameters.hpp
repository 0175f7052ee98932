// What a fused system fits and its bundle stores: the mixture (kind and parameters), the cascade
// (teachers cheapest first, entropy thresholds) and the router (ridge from prompt features to each
// teacher's loss), read from a bundle's tensors and written back into it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "nexus/fusion/mixtures/kinds.hpp"
#include "nexus/fusion/system/bundle.hpp"
#include "nexus/fusion/system/cascade.hpp"
#include "nexus/fusion/system/router.hpp"
#include "nexus/fusion/teachers/teacher_set.hpp"

namespace nexus::fusion {

struct system_parameters {
  mixture_kind kind = mixture_kind::linear;
  std::vector<double> weights;      // mixture_parameters(kind, teachers) of them
  std::vector<std::size_t> order;   // the cascade's teachers, cheapest first
  std::size_t feature_teacher = 0;  // the router's (the cheapest)
  std::optional<std::vector<double>> thresholds;
  std::optional<router_model> router;

  /// The mixture for reading one document from its start.
  document_mixer mixer() const { return document_mixer(kind, weights); }
  /// The mixture of the first `consulted` teachers of the cascade order (`ordered`: their
  /// distributions in that order), each position read alone.
  byte_distribution mix_consulted(std::span<const byte_distribution> ordered, std::size_t consulted) const {
    return consulted_mixer(kind, weights, std::span(order).first(consulted)).mix(ordered.first(consulted));
  }
  /// mix_consulted as the cascade's mixer (refers to these parameters).
  subset_mixer cascade_mixer() const {
    return [this](std::span<const byte_distribution> ordered, std::size_t k) { return mix_consulted(ordered, k); };
  }
  /// Replaces the mixture after checking its parameter count.
  void set_mixture(mixture_kind k, std::vector<double> w, std::size_t teachers) {
    const auto want = std::size_t(mixture_parameters(k, std::int64_t(teachers)));
    if (w.size() != want)
      throw usage_error("mixture", std::to_string(w.size()) + " weights for a " + name_of(k) + " mixture of " +
                                       std::to_string(teachers) + " teachers (" + std::to_string(want) + " needed)");
    kind = k, weights = std::move(w);
  }
};

/// The router's input width: 256 byte features and the feature teacher's hidden width.
inline std::int64_t router_feature_width(const teacher_set& teachers, std::size_t feature_teacher) {
  return router_byte_features + teachers.info(feature_teacher).arch.dims.hidden_size;
}

/// The parameters a bundle holds; without a fit, an even linear mixture and the cascade order by
/// weight bytes.
inline system_parameters read_parameters(const bundle_file& bundle, const teacher_set& teachers) {
  const auto& m = bundle.manifest();
  const auto T = teachers.size();
  system_parameters p;
  if (m.mixture) {
    p.kind = m.mixture->kind;
    const auto w = bundle.parameter(m.mixture->weights);
    p.weights.assign(w.begin(), w.end());
  } else {
    p.weights.assign(T, 1.0 / double(T));
  }
  // The cascade's default order and the router's feature teacher: cheapest first (fewest weight bytes).
  p.order.resize(T);
  for (std::size_t t = 0; t < T; ++t) p.order[t] = t;
  std::stable_sort(p.order.begin(), p.order.end(),
                   [&](auto a, auto b) { return teachers.info(a).weight_bytes < teachers.info(b).weight_bytes; });
  p.feature_teacher = p.order.at(0);
  if (m.cascade) {
    p.order.assign(m.cascade->order.begin(), m.cascade->order.end());
    const auto th = bundle.parameter(m.cascade->thresholds);
    p.thresholds = std::vector<double>(th.begin(), th.end());
  }
  if (m.router) {
    const auto w = bundle.parameter(m.router->weight), b = bundle.parameter(m.router->bias);
    const auto F = std::int64_t(w.size() / T);
    if (F != router_feature_width(teachers, p.feature_teacher))
      throw bundle_error(bundle_error::code::tensor_invalid, bundle.path().string(),
                         "router.weight has " + std::to_string(F) + " features; this bundle's router reads " +
                             std::to_string(router_feature_width(teachers, p.feature_teacher)) +
                             " (256 byte features + the hidden width of '" + m.teachers[p.feature_teacher].name + "')");
    router_model r{m.router->prefix_bytes, affine_map::zero(F, std::int64_t(T))};
    for (std::int64_t f = 0; f < F; ++f)  // stored [features, teachers]; the map is [teachers, features]
      for (std::size_t t = 0; t < T; ++t) r.map.w[t * std::size_t(F) + std::size_t(f)] = w[std::size_t(f) * T + t];
    r.map.b.assign(b.begin(), b.end());
    p.router = std::move(r);
  }
  return p;
}

/// Rewrites the bundle at `path`: `edit` changes the manifest and appends tensors; the old tensors
/// whose names it appends are dropped. Written beside it and renamed: a reader never sees a partial file.
template <class Edit>
void rewrite_bundle(const std::filesystem::path& path, Edit&& edit) {
  const auto tmp = std::filesystem::path(path.string() + ".tmp");
  {
    const bundle_file b(path);
    bundle_manifest m = b.manifest();
    std::vector<tensor_to_write> added, tensors;
    edit(m, added);
    for (const auto& name : b.tensors().names())
      if (std::none_of(added.begin(), added.end(), [&](const auto& a) { return a.name == name; })) {
        const auto v = b.tensors().tensor(name);
        tensors.push_back({name, v.type, v.shape, v.data});
      }
    tensors.insert(tensors.end(), added.begin(), added.end());
    write_bundle(tmp, m, tensors);
  }
  std::filesystem::rename(tmp, path);
}

/// Rewrites the bundle at `path` with a mixture (weights as an F32 tensor "mixture.weights"),
/// keeping every other tensor.
inline void save_mixture(const std::filesystem::path& path, mixture_kind k, std::span<const double> weights) {
  std::vector<float> w(weights.begin(), weights.end());
  rewrite_bundle(path, [&](bundle_manifest& m, std::vector<tensor_to_write>& tensors) {
    m.mixture = bundle_mixture{k, "mixture.weights"};
    tensors.push_back({"mixture.weights", dtype::f32, {std::int64_t(w.size())}, std::as_bytes(std::span(w))});
  });
}

/// Rewrites the bundle at `path` with `p`: its mixture, and its router and cascade where it has them;
/// every other tensor is kept.
inline void write_parameters(const std::filesystem::path& path, const system_parameters& p, std::size_t teachers) {
  const auto T = teachers;
  std::vector<float> w(p.weights.begin(), p.weights.end()), th, rw, rb;
  rewrite_bundle(path, [&](bundle_manifest& m, std::vector<tensor_to_write>& tensors) {
    m.mixture = bundle_mixture{p.kind, "mixture.weights"};
    tensors.push_back({"mixture.weights", dtype::f32, {std::int64_t(w.size())}, std::as_bytes(std::span(w))});
    if (p.thresholds) {
      th.assign(p.thresholds->begin(), p.thresholds->end());
      m.cascade = bundle_cascade{{p.order.begin(), p.order.end()}, "cascade.thresholds"};
      tensors.push_back({"cascade.thresholds", dtype::f32, {std::int64_t(th.size())}, std::as_bytes(std::span(th))});
    }
    if (p.router) {
      const auto F = p.router->map.d_in;
      rw.resize(std::size_t(F) * T);
      for (std::int64_t f = 0; f < F; ++f)
        for (std::size_t t = 0; t < T; ++t)
          rw[std::size_t(f) * T + t] = float(p.router->map.w[t * std::size_t(F) + std::size_t(f)]);
      rb.assign(p.router->map.b.begin(), p.router->map.b.end());
      m.router = bundle_router{p.router->prefix_bytes, "router.weight", "router.bias"};
      tensors.push_back({"router.weight", dtype::f32, {F, std::int64_t(T)}, std::as_bytes(std::span(rw))});
      tensors.push_back({"router.bias", dtype::f32, {std::int64_t(T)}, std::as_bytes(std::span(rb))});
    }
  });
}

}  // namespace nexus::fusion
