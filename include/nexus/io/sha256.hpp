// SHA-256 of bytes and of files (the identity of weights and corpus files in a feature store and a
// bundle), computed by OpenSSL's libcrypto (EVP; docs/dependencies.md). sha256_file_cached() keeps
// each file's digest beside its size and modification time, so loading a bundle does not read
// hundreds of megabytes of teachers again when nothing changed.
#pragma once

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "nexus/core/error.hpp"
#include "nexus/core/log.hpp"

namespace nexus {

class sha256 {
 public:
  sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
      throw std::runtime_error("sha256: OpenSSL could not start a SHA-256 digest");
  }
  void update(std::span<const std::byte> data) {
    if (!data.empty() && EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1)
      throw std::runtime_error("sha256: OpenSSL digest update failed");
  }
  void update(std::string_view s) { update(std::as_bytes(std::span(s.data(), s.size()))); }

  /// The digest as 64 lowercase hex digits; the object is spent afterwards.
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), md, &n) != 1 || n != 32)
      throw std::runtime_error("sha256: OpenSSL digest final failed");
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(64, '0');
    for (unsigned i = 0; i < 32; ++i) {
      out[2 * i] = digits[md[i] >> 4];
      out[2 * i + 1] = digits[md[i] & 15];
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

inline std::string sha256_hex(std::span<const std::byte> data) {
  sha256 h;
  h.update(data);
  return h.hex();
}

/// Where the progress of hashing a file goes: (path, bytes hashed, file size), called from the hashing thread
/// after each MiB and once at the end. Empty by default; a program that draws progress (the `nexus` command
/// line) sets it, as it sets the log sink.
using hash_progress_sink = std::function<void(const std::string& path, std::uint64_t done, std::uint64_t total)>;
inline hash_progress_sink& hash_progress() {
  static hash_progress_sink sink;
  return sink;
}

/// SHA-256 of a file's bytes.
inline std::string sha256_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw io_error(path, "cannot open for hashing");
  sha256 h;
  std::vector<std::byte> buf(1 << 20);
  std::error_code ec;
  const std::uint64_t total = std::filesystem::file_size(path, ec);
  std::uint64_t done = 0;
  const auto& progress = hash_progress();
  while (const auto n = std::fread(buf.data(), 1, buf.size(), f)) {
    h.update({buf.data(), n});
    done += n;
    if (progress) progress(path, done, std::max(total, done));
  }
  const bool bad = std::ferror(f);
  std::fclose(f);
  if (bad) throw io_error(path, "read failed while hashing");
  return h.hex();
}

/// sha256_file() through a cache: `cache_dir`/<sha256 of the file's absolute path> holds
/// "<size> <mtime ns> <digest>", used while the file's size and modification time are unchanged (a
/// file changed within 2 s of its last write is never cached). A cache that cannot be read or
/// written is ignored (the digest is computed).
inline std::string sha256_file_cached(const std::filesystem::path& file, const std::filesystem::path& cache_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  const auto mtime = fs::last_write_time(file, ec);
  if (ec) return sha256_file(file.string());  // names the file in its error
  const std::string key = std::to_string(size) + " " + std::to_string(mtime.time_since_epoch().count());
  const std::string abs = fs::absolute(file, ec).lexically_normal().string();
  const auto entry = cache_dir / sha256_hex(std::as_bytes(std::span(abs.data(), abs.size())));
  if (std::ifstream in(entry); in) {
    std::string line;
    std::getline(in, line);
    if (line.size() == key.size() + 65 && line.compare(0, key.size(), key) == 0 && line[key.size()] == ' ') {
      log::debug("sha256 of {}: cached ({})", file.string(), entry.string());
      return line.substr(key.size() + 1);
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto digest = sha256_file(file.string());
  log::info("sha256 of {} ({} bytes) computed in {:.2f} s", file.string(), size,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  // A file modified within the clock's granularity of its last write could change again without
  // changing its time ("racy git"): only digests of files untouched for 2 s are kept.
  if (fs::file_time_type::clock::now() - mtime < std::chrono::seconds(2)) return digest;
  fs::create_directories(cache_dir, ec);
  const auto tmp = entry.string() + ".tmp";
  if (std::ofstream out(tmp, std::ios::trunc); out && (out << key << ' ' << digest << '\n')) {
    out.close();
    fs::rename(tmp, entry, ec);
  }
  return digest;
}

}  // namespace nexus
