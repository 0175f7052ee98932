// A checkpoint's weights: one `model.safetensors`, shards listed by `model.safetensors.index.json`, or one
// GGUF file (its tensors under llama.cpp's names, in their ggml block formats). Tensor names are unique
// across the whole checkpoint.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "nexus/io/gguf.hpp"
#include "nexus/io/safetensors.hpp"

namespace nexus {

class checkpoint {
 public:
  static constexpr const char* single_file = "model.safetensors";
  static constexpr const char* index_file = "model.safetensors.index.json";

  /// `path` is a checkpoint folder, one .safetensors file, or one .gguf file.
  explicit checkpoint(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    using c = safetensors_error::code;
    if (fs::is_regular_file(path) && path.extension() == ".gguf") {
      gguf_ = std::make_unique<gguf::file>(path);
      for (std::size_t i = 0; i < gguf_->tensors().size(); ++i)
        where_.emplace(gguf_->tensors()[i].name, std::pair{std::size_t(0), i});
    } else if (fs::is_regular_file(path)) {
      add_shard(path.string());
    } else if (!fs::is_directory(path)) {
      throw io_error(path.string(), "no such checkpoint file or folder");
    } else if (fs::exists(path / index_file)) {
      const auto where = (path / index_file).string();
      std::ifstream in(path / index_file, std::ios::binary);
      if (!in) throw io_error(where, "cannot read");
      std::stringstream ss;
      ss << in.rdbuf();
      const auto j = detail::parse_json_unique_keys(ss.str(), where, c::index_invalid, c::index_invalid);
      if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
        throw safetensors_error(c::index_invalid, where, "needs an object 'weight_map' of tensor name -> shard file");
      std::map<std::string, std::vector<std::string>> by_shard;  // shard file -> tensors the index puts there
      for (const auto& [name, file] : j["weight_map"].items()) {
        if (!file.is_string())
          throw safetensors_error(c::index_invalid, where, "weight_map['" + name + "'] must be a file name");
        const auto f = file.get<std::string>();
        if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos || f == "." || f == "..")
          throw safetensors_error(
              c::index_invalid, where,
              "weight_map['" + name + "'] = '" + f + "' is not a plain file name in the checkpoint folder");
        by_shard[f].push_back(name);
      }
      for (const auto& [file, names] : by_shard) {
        const auto shard_path = path / file;
        if (!fs::exists(shard_path))
          throw safetensors_error(c::missing_shard, where,
                                  "shard '" + file + "' (holding '" + names.front() + "') does not exist");
        const auto& shard = add_shard(shard_path.string());
        for (const auto& n : names)
          if (!shard.contains(n))
            throw safetensors_error(c::index_mismatch, shard.path(),
                                    "index puts tensor '" + n + "' here, but the file has no such tensor");
        if (shard.size() != names.size())
          for (const auto& n : shard.names())
            if (std::find(names.begin(), names.end(), n) == names.end())
              throw safetensors_error(c::index_mismatch, shard.path(),
                                      "holds tensor '" + n + "' that the index does not list for this shard");
      }
    } else if (fs::exists(path / single_file)) {
      add_shard((path / single_file).string());
    } else {
      throw io_error(path.string(), std::string("no ") + single_file + " or " + index_file + " in this folder");
    }
  }

  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  tensor_view tensor(const std::string& name) const {
    const auto it = where_.find(name);
    if (it == where_.end()) throw checkpoint_error(name, "no such tensor in the checkpoint");
    return at(it->second);
  }
  /// Every tensor, sorted by name.
  std::vector<tensor_view> tensors() const {
    std::vector<tensor_view> out;
    for (const auto& [name, loc] : where_) out.push_back(at(loc));
    return out;
  }
  std::size_t size() const noexcept { return where_.size(); }
  const std::vector<std::unique_ptr<safetensors_file>>& shards() const noexcept { return shards_; }
  /// The GGUF file this checkpoint is, or null for safetensors.
  const gguf::file* gguf_file() const noexcept { return gguf_.get(); }

 private:
  const safetensors_file& add_shard(const std::string& file) {
    shards_.push_back(std::make_unique<safetensors_file>(file));
    const auto& shard = *shards_.back();
    for (std::size_t i = 0; i < shard.size(); ++i) {
      auto t = shard.tensor(i);
      const auto [it, fresh] = where_.emplace(t.name, std::pair{shards_.size() - 1, i});
      if (!fresh)
        throw safetensors_error(safetensors_error::code::duplicate_name, file,
                                "tensor '" + t.name + "' is also in " + shards_[it->second.first]->path());
    }
    return shard;
  }

  tensor_view at(const std::pair<std::size_t, std::size_t>& loc) const {
    if (!gguf_) return shards_[loc.first]->tensor(loc.second);
    const auto& t = gguf_->tensors()[loc.second];
    const auto plain = t.type == gguf::tensor_type::f32    ? std::optional(dtype::f32)
                       : t.type == gguf::tensor_type::f16  ? std::optional(dtype::f16)
                       : t.type == gguf::tensor_type::bf16 ? std::optional(dtype::bf16)
                                                           : std::nullopt;
    return {t.name, plain.value_or(dtype::u8), t.shape(), t.data, t.type};
  }

  std::unique_ptr<gguf::file> gguf_;
  std::vector<std::unique_ptr<safetensors_file>> shards_;
  std::map<std::string, std::pair<std::size_t, std::size_t>> where_;  // name -> (shard, index in shard)
};

}  // namespace nexus
