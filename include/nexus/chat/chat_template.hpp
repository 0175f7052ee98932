// Chat templates: a conversation rendered to the prompt text a model was trained on, as
// transformers' `apply_chat_template(messages, tokenize=False, ...)` renders it. The template comes
// from a model's tokenizer_config.json (`chat_template`), a chat_template.jinja beside it, or GGUF
// metadata (`tokenizer.chat_template`).
#pragma once

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/chat/jinja.hpp"
#include "nexus/core/error.hpp"
#include "nexus/io/gguf.hpp"
#include "nexus/tokenizer/tokenizer.hpp"

namespace nexus::chat {

struct message {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
};

/// What transformers passes to the template besides the messages.
struct options {
  bool add_generation_prompt = false;
  // The tokenizer's special tokens (transformers passes its special_tokens_map); unset ones are
  // undefined in the template.
  std::optional<std::string> bos_token, eos_token, unk_token, pad_token;
  // More variables (tools, documents, date_string, enable_thinking, ...). `tools` and `documents`
  // are none unless given here, as in transformers.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

inline nlohmann::ordered_json to_json(const std::vector<message>& messages) {
  auto out = nlohmann::ordered_json::array();
  for (const auto& m : messages) out.push_back({{"role", m.role}, {"content", m.content}});
  return out;
}

/// A compiled chat template: parse once, render many conversations.
class chat_template {
 public:
  /// Throws template_error (with line and column) if `source` is outside the supported subset.
  explicit chat_template(std::string source, std::string where = "chat template")
      : source_(std::move(source)), compiled_(source_, std::move(where)) {}

  /// `messages`: a JSON array of message objects (role, content, and whatever else the template
  /// reads: tool_calls, ...). Throws template_raised_error when the template rejects them.
  std::string render(const nlohmann::ordered_json& messages, const options& opts = {}) const {
    if (!messages.is_array()) throw usage_error(compiled_.where(), "messages must be a JSON array");
    if (messages.empty()) throw usage_error(compiled_.where(), "cannot apply a chat template to an empty conversation");
    auto chat = nlohmann::ordered_json::array();
    for (const auto& m : messages) {
      if (!m.is_object()) throw usage_error(compiled_.where(), "each message must be a JSON object");
      chat.push_back(with_reasoning_aliases(m));
    }
    jinja::object vars;
    vars.set("messages", jinja::from_json(chat));
    vars.set("tools", nullptr);
    vars.set("documents", nullptr);
    vars.set("add_generation_prompt", opts.add_generation_prompt);
    auto token = [&](const char* name, const std::optional<std::string>& v) {
      if (v) vars.set(name, *v);
    };
    token("bos_token", opts.bos_token);
    token("eos_token", opts.eos_token);
    token("unk_token", opts.unk_token);
    token("pad_token", opts.pad_token);
    if (!opts.extra.is_object()) throw usage_error(compiled_.where(), "extra template variables must be a JSON object");
    for (const auto& [k, v] : opts.extra.items()) vars.set(k, jinja::from_json(v));
    return compiled_.render(vars);
  }
  std::string render(const std::vector<message>& messages, const options& opts = {}) const {
    return render(to_json(messages), opts);
  }

  const std::string& source() const noexcept { return source_; }

 private:
  /// As transformers: a message's reasoning (reasoning_content, thinking or reasoning, the first
  /// set) is also passed as `thinking` (first) and `reasoning_content` (last), the names templates read.
  static nlohmann::ordered_json with_reasoning_aliases(const nlohmann::ordered_json& m) {
    const nlohmann::ordered_json* reasoning = nullptr;
    for (const char* key : {"reasoning_content", "thinking", "reasoning"})
      if (m.contains(key) && !m[key].is_null()) {
        reasoning = &m[key];
        break;
      }
    if (!reasoning) return m;
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    out["thinking"] = *reasoning;
    for (const auto& [k, v] : m.items()) out[k] = v;
    out["reasoning_content"] = *reasoning;
    return out;
  }

  std::string source_;
  jinja::compiled_template compiled_;
};

/// One-shot: compile `source` and render `messages`.
inline std::string render_chat(std::string_view source, const nlohmann::ordered_json& messages,
                               const options& opts = {}) {
  return chat_template(std::string(source)).render(messages, opts);
}
inline std::string render_chat(std::string_view source, const std::vector<message>& messages,
                               const options& opts = {}) {
  return chat_template(std::string(source)).render(messages, opts);
}

/// The special tokens of `tok` as template variables (bos_token, eos_token, unk_token, pad_token),
/// with the rest of `opts` kept.
inline options with_special_tokens(const tokenizer& tok, options opts = {}) {
  auto text = [&](std::optional<std::int32_t> id) -> std::optional<std::string> {
    if (!id) return std::nullopt;
    return tok.token_text(*id);
  };
  opts.bos_token = text(tok.bos());
  opts.eos_token = text(tok.eos());
  opts.unk_token = text(tok.unk());
  opts.pad_token = text(tok.pad());
  return opts;
}

/// A GGUF file's chat template (`tokenizer.chat_template`), or nullopt when it has none.
inline std::optional<std::string> template_from_gguf(const gguf::file& f) {
  const auto* v = f.find("tokenizer.chat_template");
  if (!v) return std::nullopt;
  return v->as<std::string>();
}

/// The chat template of a Hugging Face model folder: `chat_template.jinja`, else tokenizer_config.json's
/// `chat_template` (a string, or a list of {name, template} of which the one named "default").
/// nullopt when the folder has none.
inline std::optional<std::string> template_from_folder(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (const auto jinja_file = dir / "chat_template.jinja"; fs::exists(jinja_file)) {
    std::ifstream in(jinja_file, std::ios::binary);
    if (!in) throw io_error(jinja_file.string(), "cannot read");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  const auto config = dir / "tokenizer_config.json";
  if (!fs::exists(config)) return std::nullopt;
  std::ifstream in(config);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw config_error(config.string(), std::string("invalid JSON: ") + e.what());
  }
  if (!j.contains("chat_template") || j["chat_template"].is_null()) return std::nullopt;
  const auto& t = j["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_array()) {
    for (const auto& named : t)
      if (named.is_object() && named.value("name", "") == "default" && named.contains("template") &&
          named["template"].is_string())
        return named["template"].get<std::string>();
    throw config_error(config.string(), "chat_template is a list without a template named 'default'");
  }
  throw config_error(config.string(), "chat_template is neither a string nor a list of named templates");
}

}  // namespace nexus::chat
