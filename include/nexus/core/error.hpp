// Typed errors. Every failure Nexus reports names what went wrong and where (file, tensor, field),
// so a caller can both show it to a person and branch on its type. The one hierarchy of the
// library: the CUDA backend reports its runtime and cuBLASLt status codes through it too.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace nexus {

/// Base of every Nexus error. `where()` is the file, tensor or config field concerned.
class error : public std::runtime_error {
 public:
  error(std::string where, const std::string& what)
      : std::runtime_error(where.empty() ? what : where + ": " + what), where_(std::move(where)) {}
  const std::string& where() const noexcept { return where_; }

 private:
  std::string where_;
};

/// A file could not be opened, read, mapped or written.
class io_error : public error {
  using error::error;
};

/// A safetensors file or index is malformed. `code()` tells which rule it broke.
class safetensors_error : public error {
 public:
  enum class code {
    file_too_small,     // fewer than 8 bytes: no header length
    header_too_large,   // header length above the limit or beyond the end of the file
    header_not_json,    // header bytes are not valid JSON
    header_not_object,  // header is JSON but not an object
    entry_invalid,      // a tensor entry is not an object with dtype, shape, data_offsets
    unknown_dtype,      // dtype string not one Nexus reads
    bad_shape,          // shape is not a list of non-negative integers, or its size overflows
    bad_offsets,        // data_offsets is not [begin, end] with begin <= end
    out_of_bounds,      // data_offsets end beyond the data section
    size_mismatch,      // end - begin differs from dtype size times element count
    overlap,            // two tensors share bytes
    gap,                // bytes of the data section belong to no tensor
    duplicate_name,     // a tensor name appears twice
    metadata_invalid,   // __metadata__ is not an object of strings
    index_invalid,      // model.safetensors.index.json is malformed
    missing_shard,      // the index names a shard file that does not exist
    index_mismatch,     // a tensor is missing from the shard the index names, or a shard holds a tensor the index omits
  };
  safetensors_error(code c, std::string where, const std::string& what) : error(std::move(where), what), code_(c) {}
  code get_code() const noexcept { return code_; }

 private:
  code code_;
};

/// A GGUF file is malformed, or a metadata value or tensor is not what the caller asked for.
/// `get_code()` tells which rule it broke.
class gguf_error : public error {
 public:
  enum class code {
    truncated,                   // a field runs past the end of the file
    bad_magic,                   // the first four bytes are not "GGUF"
    bad_version,                 // version 1 (32-bit counts), a big-endian file, or a version other than 2 and 3
    count_too_large,             // a tensor, metadata or array count cannot fit in the rest of the file
    string_too_long,             // a string length runs past the end of the file
    nesting_too_deep,            // arrays nested deeper than gguf_max_array_depth
    unknown_value_type,          // a metadata value type id outside 0..12
    unknown_tensor_type,         // a tensor type id ggml does not define
    bad_bool,                    // a boolean byte other than 0 or 1
    bad_alignment,               // general.alignment is not a u32 power of two
    misaligned_offset,           // a tensor offset is not a multiple of the alignment
    out_of_bounds,               // tensor data runs past the end of the file
    overlap,                     // two tensors share bytes
    bad_dims,                    // n_dims is 0 or above 4, or a dimension is 0 or above INT64_MAX
    dims_overflow,               // the element count or byte size of a tensor overflows 64 bits
    size_not_multiple_of_block,  // ne[0] is not a multiple of the type's block size
    duplicate_key,               // a metadata key appears twice
    duplicate_tensor,            // a tensor name appears twice
    type_mismatch,               // a value read as a type it does not hold (e.g. a string as u32)
    value_out_of_range,          // an integer or float that does not convert exactly to the type asked for
    index_out_of_range,          // an array element past its end
    missing_key,                 // a required metadata key is absent
    unsupported_tensor_type,     // a type the reader knows but Nexus cannot dequantise (q8_1, q8_k, IQ*, ...)
  };
  gguf_error(code c, std::string where, const std::string& what) : error(std::move(where), what), code_(c) {}
  code get_code() const noexcept { return code_; }

 private:
  code code_;
};

/// config.json is missing a field, or a field has the wrong type or an impossible value.
class config_error : public error {
  using error::error;
};

/// The input is well formed but names something Nexus does not support (model_type, rope type,
/// activation, a flag no trait can express). The message lists what is supported.
class unsupported_error : public error {
  using error::error;
};

/// A checkpoint does not match its architecture: a tensor missing, duplicated, unused or mis-shaped.
class checkpoint_error : public error {
  using error::error;
};

/// Arguments of a public API (or the command line) are wrong.
class usage_error : public error {
  using error::error;
};

/// A template (a chat template: the Jinja subset of nexus/chat/jinja.hpp) does not parse, uses a
/// construct outside the subset, or fails while rendering. Names the line and column.
class template_error : public error {
 public:
  template_error(std::string where, std::size_t line, std::size_t column, const std::string& what)
      : error(std::move(where), "line " + std::to_string(line) + ", column " + std::to_string(column) + ": " + what),
        line_(line),
        column_(column) {}
  std::size_t line() const noexcept { return line_; }
  std::size_t column() const noexcept { return column_; }

 private:
  std::size_t line_, column_;
};

/// The template itself refused its input with `raise_exception(message)` (e.g. roles that do
/// not alternate); `what()` ends with the template's message.
class template_raised_error : public template_error {
  using template_error::template_error;
};

/// A call into the CUDA runtime, cuBLASLt or CUB failed. `code()` is the library's own status
/// value (cudaError_t or cublasStatus_t), `library()` says whose.
class device_error : public error {
 public:
  enum class api { cuda, cublas };
  device_error(api library, int code, std::string where, const std::string& what)
      : error(std::move(where), what), library_(library), code_(code) {}
  api library() const noexcept { return library_; }
  int code() const noexcept { return code_; }

 private:
  api library_;
  int code_;
};

/// A teacher set's memory budget cannot hold a teacher: its weights alone are larger than the budget.
class budget_error : public error {
  using error::error;
};

/// A feature store (nexus/fusion/features/feature_store.hpp) is malformed, or belongs to other teachers, corpus
/// or arguments than the run that opens it. `get_code()` tells which.
class store_error : public error {
 public:
  enum class code {
    not_a_store,       // the folder holds files but no manifest.json
    manifest_invalid,  // manifest.json is not the JSON the format describes
    mismatch,          // made from other weights, tokenizers, corpus or arguments
    missing_shard,     // the manifest lists a shard file that does not exist
    shard_invalid,     // a shard lacks a tensor, or its shapes disagree with the manifest
    incomplete,        // extraction has not finished (a reader asked for a complete store)
  };
  store_error(code c, std::string where, const std::string& what) : error(std::move(where), what), code_(c) {}
  code get_code() const noexcept { return code_; }

 private:
  code code_;
};

/// A bridge file (nexus/fusion/bridges/bridge.hpp) is malformed, or is not the bridge the caller asked for.
/// `get_code()` tells which rule it broke; `where()` names the file (and the tensor or key).
class bridge_error : public error {
 public:
  enum class code {
    not_a_bridge,       // not a safetensors file, or its metadata has no format=nexus.bridge
    bad_version,        // a format version this reader does not know
    kind_mismatch,      // a bridge of another kind than the one asked for
    traits_invalid,     // the traits (kind and dimensions) in the metadata are missing or impossible
    tensor_missing,     // a parameter the traits imply is not in the file
    tensor_unexpected,  // the file holds a tensor the traits do not imply
    tensor_invalid,     // a parameter has another dtype (F32 expected) or shape than the traits imply
  };
  bridge_error(code c, std::string where, const std::string& what) : error(std::move(where), what), code_(c) {}
  code get_code() const noexcept { return code_; }

 private:
  code code_;
};

/// A .nexus bundle (nexus/fusion/system/bundle.hpp) is malformed, or its teachers are missing or are not the
/// files it was made from. `get_code()` tells which.
class bundle_error : public error {
 public:
  enum class code {
    not_a_bundle,      // a safetensors file without the bundle manifest, or a manifest of another format
    bad_version,       // a manifest version this Nexus does not read
    manifest_invalid,  // the manifest is not the JSON the format describes
    tensor_missing,    // the manifest names a tensor the file does not hold
    tensor_invalid,    // a named tensor has the wrong type or shape for its role
    missing_teacher,   // a teacher's file is not where the manifest says
    teacher_mismatch,  // a teacher's file has another size or sha256 than the manifest says
  };
  bundle_error(code c, std::string where, const std::string& what) : error(std::move(where), what), code_(c) {}
  code get_code() const noexcept { return code_; }

 private:
  code code_;
};

}  // namespace nexus
