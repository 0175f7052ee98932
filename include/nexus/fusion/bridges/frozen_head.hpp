// The frozen head of a teacher: its final norm and LM head, from the residual stream after its last
// layer to its logits, forward and backward (the head's weights stay fixed; the gradient flows to
// the input). Bridges trained "through the head" of teacher B use it: the bridged state goes
// through B's own final norm (RMSNorm, LayerNorm, Gemma's 1 + w), B's own LM head (tied or not,
// with its bias) and B's own logit scale and final softcap, with the CPU backend's functions on
// B's stored weights, so the logits are the ones B computes from that state.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "nexus/backend/cpu/linear.hpp"
#include "nexus/backend/cpu/model.hpp"
#include "nexus/backend/cpu/ops.hpp"
#include "nexus/math/norm.hpp"

namespace nexus::fusion {

class frozen_head {
 public:
  /// The head of the model `arch` with weights `w` (canonical names, stored formats).
  frozen_head(const descriptor& arch, stored_weights w, int threads = 0)
      : arch_(arch), w_(std::move(w)), pool_(shared_thread_pool(threads)), kind_(traits_of(arch).norm) {
    auto need = [&](const std::string& name) -> const stored_tensor& {
      const auto it = w_.find(name);
      if (it == w_.end()) throw checkpoint_error(name, "weight missing for this architecture's head");
      return it->second;
    };
    auto vector = [&](const std::string& name, std::vector<float>& dst) {
      dst = need(name).to_f32().data;
      if (std::int64_t(dst.size()) != hidden()) throw checkpoint_error(name, "not of the hidden size");
      return dst.data();
    };
    norm_ = {nullptr, nullptr, float(arch.norm.eps), arch.norm.unit_offset};
    if (rule_of(kind_).weight) norm_.weight = vector("final_norm.weight", norm_weight_);
    if (rule_of(kind_).bias) norm_.bias = vector("final_norm.bias", norm_bias_);
    norm_weight64_.assign(norm_weight_.begin(), norm_weight_.end());
    norm_bias64_.assign(norm_bias_.begin(), norm_bias_.end());
    norm64_ = {norm_.weight ? norm_weight64_.data() : nullptr, norm_.bias ? norm_bias64_.data() : nullptr,
               double(norm_.eps), norm_.unit_offset};
    head_ = &need(arch.embedding.tied ? "embed.tokens.weight" : "lm_head.weight");
    if (head_->rows() != vocab() || head_->cols() != hidden())
      throw checkpoint_error("lm_head.weight", "not [vocab, hidden]");
    if (const auto it = w_.find("lm_head.bias"); it != w_.end()) head_bias_ = it->second.to_f32().data;
    scale_ = float(arch.head.logit_scale);
    cap_ = float(arch.head.final_softcap);
  }

  frozen_head(const frozen_head&) = delete;  // head_ points into w_
  frozen_head(frozen_head&&) = default;      // moving the map keeps its elements where they are
  frozen_head& operator=(frozen_head&&) = default;

  /// The head of a checkpoint folder or .gguf file (its weights viewed in place where stored so).
  static frozen_head load(const std::filesystem::path& path, int threads = 0) {
    auto o = registry::open_checkpoint(path);
    auto file = std::make_shared<const checkpoint>(std::move(o.weights));
    return frozen_head(o.arch, unpack_stored(o.bound, o.arch, file), threads);
  }

  const descriptor& arch() const noexcept { return arch_; }
  std::int64_t hidden() const noexcept { return arch_.dims.hidden_size; }
  std::int64_t vocab() const noexcept { return arch_.dims.vocab_size; }

  /// logits [rows, vocab] of residual-stream rows h [rows, hidden], as the CPU model computes them.
  void forward(const float* h, std::int64_t rows, float* logits) const {
    std::vector<float> a(h, h + rows * hidden());
    normalize(a.data(), rows);
    cpu::linear(a.data(), rows, *head_, head_bias_.empty() ? nullptr : head_bias_.data(), logits, *pool_);
    for (std::int64_t i = 0; i < rows * vocab(); ++i) logits[i] = math::finish_logit(logits[i], scale_, cap_);
  }

  /// The same in fp64 (weights widened, every step in double): the reference of the gradient checks.
  void forward_fp64(const double* h, std::int64_t rows, double* logits) const {
    const std::int64_t H = hidden(), V = vocab();
    std::vector<double> a(h, h + rows * H);
    visit_enum(kind_, [&](auto k) {
      for (std::int64_t r = 0; r < rows; ++r) math::normalize_row<decltype(k)::value>(a.data() + r * H, H, norm64_);
    });
    std::vector<float> w(static_cast<std::size_t>(H));
    for (std::int64_t v = 0; v < V; ++v) {
      head_->decode_row(v, w.data());
      for (std::int64_t r = 0; r < rows; ++r) {
        double s = head_bias_.empty() ? 0.0 : double(head_bias_[std::size_t(v)]);
        for (std::int64_t i = 0; i < H; ++i) s += a[std::size_t(r * H + i)] * double(w[std::size_t(i)]);
        logits[r * V + v] = math::finish_logit<double>(s, scale_, cap_);
      }
    }
  }

  /// dL/dh into dh [rows, hidden], from h, the logits forward() returned for it, and dL/dlogits.
  /// The head's product runs over tiles of decoded vocabulary rows, each into its own partial sum,
  /// added in tile order: the result does not depend on the thread count.
  void backward(const float* h, const float* logits, const float* dlogits, std::int64_t rows, float* dh) const {
    const std::int64_t H = hidden(), V = vocab();
    std::vector<float> dz(static_cast<std::size_t>(rows * V));
    for (std::int64_t i = 0; i < rows * V; ++i)
      dz[std::size_t(i)] = dlogits[i] * math::finish_logit_grad(logits[i], scale_, cap_);
    constexpr std::int64_t tile = 2048;
    const std::int64_t tiles = (V + tile - 1) / tile;
    std::vector<float> partial(static_cast<std::size_t>(tiles * rows * H));
    const auto& lib = cpu::blas();
    const auto& k = cpu::kernels();
    pool_->parallel_for(tiles, [&](std::int64_t t) {
      const std::int64_t o0 = t * tile, count = std::min(tile, V - o0);
      thread_local std::vector<float> decoded;
      if (decoded.size() < std::size_t(count * H)) decoded.resize(std::size_t(count * H));
      k.decode_rows(head_->type, head_->row(o0), head_->row_bytes(), count, H, decoded.data());
      float* out = partial.data() + t * rows * H;
      if (lib.sgemm) {
        lib.sgemm(lib.row_major, lib.no_trans, lib.no_trans, int(rows), int(H), int(count), 1.0f, dz.data() + o0,
                  int(V), decoded.data(), int(H), 0.0f, out, int(H));
      } else {
        for (std::int64_t r = 0; r < rows; ++r)
          for (std::int64_t v = 0; v < count; ++v) {
            const float g = dz[std::size_t(r * V + o0 + v)];
            for (std::int64_t i = 0; i < H; ++i) out[r * H + i] += g * decoded[std::size_t(v * H + i)];
          }
      }
    });
    std::vector<float> da(static_cast<std::size_t>(rows * H), 0.0f);
    for (std::int64_t t = 0; t < tiles; ++t)
      for (std::int64_t i = 0; i < rows * H; ++i) da[std::size_t(i)] += partial[std::size_t(t * rows * H + i)];
    visit_enum(kind_, [&](auto kd) {
      for (std::int64_t r = 0; r < rows; ++r)
        math::normalize_row_backward<decltype(kd)::value>(h + r * H, da.data() + r * H, dh + r * H,
                                                          static_cast<float*>(nullptr), static_cast<float*>(nullptr), H,
                                                          norm_);
    });
  }

  /// backward() in fp64, from the fp64 forward (the head's product in double).
  void backward_fp64(const double* h, const double* logits, const double* dlogits, std::int64_t rows,
                     double* dh) const {
    const std::int64_t H = hidden(), V = vocab();
    std::vector<double> da(static_cast<std::size_t>(rows * H), 0.0);
    std::vector<float> w(static_cast<std::size_t>(H));
    for (std::int64_t v = 0; v < V; ++v) {
      head_->decode_row(v, w.data());
      for (std::int64_t r = 0; r < rows; ++r) {
        const double g = dlogits[r * V + v] * math::finish_logit_grad<double>(logits[r * V + v], scale_, cap_);
        for (std::int64_t i = 0; i < H; ++i) da[std::size_t(r * H + i)] += g * double(w[std::size_t(i)]);
      }
    }
    visit_enum(kind_, [&](auto kd) {
      for (std::int64_t r = 0; r < rows; ++r)
        math::normalize_row_backward<decltype(kd)::value>(h + r * H, da.data() + r * H, dh + r * H,
                                                          static_cast<double*>(nullptr), static_cast<double*>(nullptr),
                                                          H, norm64_);
    });
  }

 private:
  void normalize(float* a, std::int64_t rows) const {
    visit_enum(kind_, [&](auto k) { cpu::normalize<decltype(k)::value>(a, rows, hidden(), norm_); });
  }

  descriptor arch_;
  stored_weights w_;
  std::shared_ptr<thread_pool> pool_;
  norm_kind kind_;
  std::vector<float> norm_weight_, norm_bias_, head_bias_;
  std::vector<double> norm_weight64_, norm_bias64_;
  math::norm_params norm_;
  math::basic_norm_params<double> norm64_;
  const stored_tensor* head_ = nullptr;
  float scale_ = 1, cap_ = 0;
};

}  // namespace nexus::fusion
