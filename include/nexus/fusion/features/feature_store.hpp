// A feature store: what several teachers computed on the same windows of a corpus, as safetensors
// shards plus a manifest.json (the format: docs/fusion.md). nexus/fusion/features/extract.hpp writes it;
// feature_store reads it back as typed views into the mapped shards, without copying.
//
// Shard tensors (W windows; per teacher t, N_t tokens over those windows, rows of window w at
// window_offsets[w] .. window_offsets[w+1]):
//   windows.document [W] I64, windows.bytes [W,2] I64 (the window's byte range in its document),
//   t{t}.window_offsets [W+1] I64, t{t}.spans [N_t,2] I64 (each token's bytes in the document),
//   t{t}.ids [N_t] I32, t{t}.<layer key> [N_t,H_t] F32|BF16 (layer<i> or final),
//   t{t}.topk_logprobs [N_t,k] F32, t{t}.topk_ids [N_t,k] I32 (when k > 0).
// Tensors are laid out widest element first, so every view is aligned for its type.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/core/error.hpp"
#include "nexus/io/dtype.hpp"
#include "nexus/io/safetensors.hpp"

namespace nexus::fusion {

inline constexpr const char* store_format = "nexus.feature_store";
inline constexpr int store_version = 1;

inline std::string shard_file_name(std::size_t index) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "shard-%05zu.safetensors", index);
  return buf;
}
inline std::string teacher_tensor(std::size_t t, const std::string& what) {
  std::string name = "t";
  name += std::to_string(t);
  name += '.';
  name += what;
  return name;
}

/// Writes `bytes` to `path` so that no reader ever sees a partial file: a temporary file beside it,
/// fsync, rename over `path`, fsync of the folder.
inline void write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  const auto tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw io_error(tmp, std::string("cannot create: ") + std::strerror(errno));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      throw io_error(tmp, std::string("write failed: ") + std::strerror(errno));
    }
    done += std::size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) throw io_error(tmp, std::string("fsync failed: ") + std::strerror(errno));
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw io_error(path.string(), std::string("cannot rename the temporary file: ") + std::strerror(errno));
  if (const int dir = ::open(path.parent_path().empty() ? "." : path.parent_path().c_str(), O_RDONLY | O_CLOEXEC);
      dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

/// manifest.json of a store folder, or store_error naming what is wrong with it.
inline nlohmann::ordered_json read_manifest(const std::filesystem::path& dir) {
  const auto path = dir / "manifest.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw store_error(store_error::code::not_a_store, dir.string(), "no manifest.json: not a feature store");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::ordered_json m;
  try {
    m = nlohmann::ordered_json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw store_error(store_error::code::manifest_invalid, path.string(), std::string("invalid JSON: ") + e.what());
  }
  auto bad = [&](const std::string& what) {
    throw store_error(store_error::code::manifest_invalid, path.string(), what);
  };
  if (!m.is_object() || !m.contains("identity") || !m["identity"].is_object()) bad("no identity object");
  const auto& id = m["identity"];
  if (id.value("format", "") != store_format) bad("format is not " + std::string(store_format));
  if (id.value("version", 0) != store_version)
    bad("format version " + id.value("version", nlohmann::ordered_json()).dump() + ", this reader knows " +
        std::to_string(store_version));
  if (!id.contains("teachers") || !id["teachers"].is_array() || id["teachers"].empty()) bad("no teachers");
  for (const auto& t : id["teachers"])
    if (!t.is_object() || !t.contains("hidden_size") || !t["hidden_size"].is_number_unsigned() ||
        !t.contains("layer_keys") || !t["layer_keys"].is_array())
      bad("a teacher entry lacks hidden_size or layer_keys");
  if (!id.contains("arguments") || !id["arguments"].is_object() || !id["arguments"].contains("top_k") ||
      !id["arguments"]["top_k"].is_number_unsigned() || !id["arguments"].contains("dtype") ||
      !id["arguments"]["dtype"].is_string())
    bad("arguments lack top_k or dtype");
  if (!m.contains("shards") || !m["shards"].is_array()) bad("no shard list");
  for (const auto& s : m["shards"])
    if (!s.is_object() || !s.contains("file") || !s["file"].is_string() || !s.contains("windows") ||
        !s["windows"].is_number_unsigned() || !s.contains("first_window") || !s["first_window"].is_number_unsigned())
      bad("a shard entry lacks file, first_window or windows");
  if (!m.contains("complete") || !m["complete"].is_boolean()) bad("no complete flag");
  return m;
}

/// Hidden-state rows of one teacher in one window: [rows, width] of f32 or bf16, viewed in place.
struct hidden_rows {
  dtype type = dtype::f32;
  std::int64_t rows = 0, width = 0;
  std::span<const std::byte> bytes;

  float at(std::int64_t r, std::int64_t c) const {
    const auto i = std::size_t(r * width + c);
    if (type == dtype::f32) {
      float f;
      std::memcpy(&f, bytes.data() + 4 * i, 4);
      return f;
    }
    std::uint16_t h;
    std::memcpy(&h, bytes.data() + 2 * i, 2);
    return bf16_to_float(h);
  }
  /// Row r widened to f32.
  std::vector<float> row(std::int64_t r) const {
    std::vector<float> out(static_cast<std::size_t>(width));
    for (std::int64_t c = 0; c < width; ++c) out[std::size_t(c)] = at(r, c);
    return out;
  }
};

/// A store read back: the manifest checked, every listed shard mapped and checked against it.
class feature_store {
 public:
  class window_view;

  /// `require_complete`: a store whose extraction has not finished is a store_error (incomplete);
  /// without it, the complete shards of a partial store are readable.
  explicit feature_store(const std::filesystem::path& dir, bool require_complete = true)
      : dir_(dir), manifest_(read_manifest(dir)) {
    const auto& id = manifest_["identity"];
    if (require_complete && !manifest_["complete"].get<bool>())
      throw store_error(store_error::code::incomplete, dir.string(), "extraction has not finished (rerun it)");
    top_k_ = id["arguments"]["top_k"].get<std::int64_t>();
    const auto dt = id["arguments"]["dtype"].get<std::string>();
    if (dt != "f32" && dt != "bf16")
      throw store_error(store_error::code::manifest_invalid, dir.string(), "dtype '" + dt + "' is not f32 or bf16");
    hidden_type_ = dt == "f32" ? dtype::f32 : dtype::bf16;
    for (const auto& t : id["teachers"]) {
      teacher_meta tm;
      tm.name = t.value("name", "");
      tm.hidden = t["hidden_size"].get<std::int64_t>();
      for (const auto& k : t["layer_keys"]) tm.layer_keys.push_back(k.get<std::string>());
      teachers_.push_back(std::move(tm));
    }
    std::int64_t next = 0;
    for (const auto& s : manifest_["shards"]) {
      const auto path = dir / s["file"].get<std::string>();
      if (!std::filesystem::exists(path))
        throw store_error(store_error::code::missing_shard, path.string(), "listed in manifest.json but absent");
      if (s["first_window"].get<std::int64_t>() != next)
        throw store_error(store_error::code::manifest_invalid, path.string(), "shards do not follow each other");
      shards_.push_back(std::make_unique<shard>(path, s["windows"].get<std::int64_t>(), *this));
      first_.push_back(next);
      next += shards_.back()->windows;
    }
    windows_ = next;
  }

  const std::filesystem::path& dir() const noexcept { return dir_; }
  const nlohmann::ordered_json& manifest() const noexcept { return manifest_; }
  bool complete() const { return manifest_["complete"].get<bool>(); }
  std::size_t teachers() const noexcept { return teachers_.size(); }
  const std::string& teacher_name(std::size_t t) const { return teachers_.at(t).name; }
  /// The hidden-state tensors of teacher t: "layer<i>" (after layer i) and "final" (after the final norm).
  const std::vector<std::string>& layer_keys(std::size_t t) const { return teachers_.at(t).layer_keys; }
  std::int64_t hidden_size(std::size_t t) const { return teachers_.at(t).hidden; }
  std::int64_t top_k() const noexcept { return top_k_; }
  dtype hidden_type() const noexcept { return hidden_type_; }
  std::size_t shards() const noexcept { return shards_.size(); }
  std::int64_t windows() const noexcept { return windows_; }
  inline window_view window(std::int64_t w) const;

 private:
  struct teacher_meta {
    std::string name;
    std::int64_t hidden = 0;
    std::vector<std::string> layer_keys;
  };
  struct teacher_views {
    std::span<const std::int64_t> offsets, spans;
    std::span<const std::int32_t> ids, topk_ids;
    std::span<const float> topk_logprobs;
    std::vector<std::pair<std::string, std::span<const std::byte>>> hidden;
  };
  struct shard {
    safetensors_file file;
    std::int64_t windows;
    std::span<const std::int64_t> document, bytes;
    std::vector<teacher_views> teachers;

    static safetensors_file open(const std::filesystem::path& p) {
      try {
        return safetensors_file(p.string());
      } catch (const safetensors_error& e) {
        throw store_error(store_error::code::shard_invalid, p.string(), e.what());
      }
    }
    shard(const std::filesystem::path& p, std::int64_t w, const feature_store& s) : file(open(p)), windows(w) {
      auto bad = [&](const std::string& what) {
        throw store_error(store_error::code::shard_invalid, p.string(), what);
      };
      auto get = [&]<class T>(const std::string& name, dtype type, std::vector<std::int64_t> shape, T*) {
        if (!file.contains(name)) bad("no tensor " + name);
        const auto v = file.tensor(name);
        if (v.type != type || v.shape != shape) {
          std::string want;
          for (auto d : shape) {
            if (!want.empty()) want += ',';
            want += std::to_string(d);
          }
          bad(name + " is not " + std::string(name_of(type)) + " [" + want + "]");
        }
        return std::span<const T>(reinterpret_cast<const T*>(v.data.data()), v.data.size() / sizeof(T));
      };
      auto rows_of = [&](const std::string& name) {
        if (!file.contains(name)) bad("no tensor " + name);
        const auto sh = file.tensor(name).shape;
        if (sh.empty()) bad(name + " has no rows");
        return sh[0];
      };
      document = get(std::string("windows.document"), dtype::i64, {w}, (std::int64_t*)nullptr);
      bytes = get(std::string("windows.bytes"), dtype::i64, {w, 2}, (std::int64_t*)nullptr);
      for (std::size_t t = 0; t < s.teachers_.size(); ++t) {
        teacher_views tv;
        tv.offsets = get(teacher_tensor(t, "window_offsets"), dtype::i64, {w + 1}, (std::int64_t*)nullptr);
        const std::int64_t n = rows_of(teacher_tensor(t, "ids"));
        if (tv.offsets.front() != 0 || tv.offsets.back() != n || !std::is_sorted(tv.offsets.begin(), tv.offsets.end()))
          bad(teacher_tensor(t, "window_offsets") + " does not split the " + std::to_string(n) + " tokens in order");
        tv.ids = get(teacher_tensor(t, "ids"), dtype::i32, {n}, (std::int32_t*)nullptr);
        tv.spans = get(teacher_tensor(t, "spans"), dtype::i64, {n, 2}, (std::int64_t*)nullptr);
        const auto H = s.teachers_[t].hidden;
        for (const auto& key : s.teachers_[t].layer_keys) {
          const auto v = get(teacher_tensor(t, key), s.hidden_type_, {n, H}, (std::byte*)nullptr);
          tv.hidden.emplace_back(key, v);
        }
        if (s.top_k_ > 0) {
          tv.topk_logprobs = get(teacher_tensor(t, "topk_logprobs"), dtype::f32, {n, s.top_k_}, (float*)nullptr);
          tv.topk_ids = get(teacher_tensor(t, "topk_ids"), dtype::i32, {n, s.top_k_}, (std::int32_t*)nullptr);
        }
        teachers.push_back(std::move(tv));
      }
    }
  };

  std::filesystem::path dir_;
  nlohmann::ordered_json manifest_;
  std::vector<teacher_meta> teachers_;
  std::int64_t top_k_ = 0;
  dtype hidden_type_ = dtype::f32;
  std::vector<std::unique_ptr<shard>> shards_;
  std::vector<std::int64_t> first_;
  std::int64_t windows_ = 0;
};

/// One window of a store: for each teacher its tokens, their spans in the document, the hidden
/// states at the tapped layers and the top-k log-probabilities, all views into the mapped shard.
class feature_store::window_view {
 public:
  window_view(const feature_store& s, const shard& sh, std::int64_t local) : s_(&s), sh_(&sh), w_(local) {}
  std::int64_t document() const { return sh_->document[std::size_t(w_)]; }
  /// [begin, end): the window's bytes in its document.
  std::pair<std::int64_t, std::int64_t> bytes() const {
    return {sh_->bytes[std::size_t(2 * w_)], sh_->bytes[std::size_t(2 * w_ + 1)]};
  }
  std::size_t tokens(std::size_t t) const { return end(t) - begin(t); }
  std::span<const std::int32_t> ids(std::size_t t) const { return tv(t).ids.subspan(begin(t), tokens(t)); }
  /// 2 values per token: begin, end (bytes in the document).
  std::span<const std::int64_t> spans(std::size_t t) const { return tv(t).spans.subspan(2 * begin(t), 2 * tokens(t)); }
  hidden_rows hidden(std::size_t t, const std::string& key) const {
    const auto row = std::size_t(s_->hidden_size(t)) * size_of(s_->hidden_type());
    for (const auto& [k, bytes] : tv(t).hidden)
      if (k == key)
        return {s_->hidden_type(), std::int64_t(tokens(t)), s_->hidden_size(t),
                bytes.subspan(begin(t) * row, tokens(t) * row)};
    throw usage_error("feature_store", "teacher " + std::to_string(t) + " has no hidden states '" + key + "'");
  }
  std::span<const float> topk_logprobs(std::size_t t) const {
    const auto k = std::size_t(s_->top_k());
    return tv(t).topk_logprobs.subspan(begin(t) * k, tokens(t) * k);
  }
  std::span<const std::int32_t> topk_ids(std::size_t t) const {
    const auto k = std::size_t(s_->top_k());
    return tv(t).topk_ids.subspan(begin(t) * k, tokens(t) * k);
  }

 private:
  const teacher_views& tv(std::size_t t) const {
    if (t >= sh_->teachers.size()) throw usage_error("feature_store", "no teacher " + std::to_string(t));
    return sh_->teachers[t];
  }
  std::size_t begin(std::size_t t) const { return std::size_t(tv(t).offsets[std::size_t(w_)]); }
  std::size_t end(std::size_t t) const { return std::size_t(tv(t).offsets[std::size_t(w_ + 1)]); }
  const feature_store* s_;
  const shard* sh_;
  std::int64_t w_;
};

inline feature_store::window_view feature_store::window(std::int64_t w) const {
  if (w < 0 || w >= windows_)
    throw usage_error("feature_store", "window " + std::to_string(w) + " of " + std::to_string(windows_));
  const auto i = std::size_t(std::upper_bound(first_.begin(), first_.end(), w) - first_.begin() - 1);
  return window_view(*this, *shards_[i], w - first_[i]);
}

}  // namespace nexus::fusion
