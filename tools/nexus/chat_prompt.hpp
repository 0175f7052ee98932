// A prompt as one user message through a model's chat template (nexus generate --chat, nexus demo).
#pragma once

#include <string>
#include <vector>

#include "nexus/chat/chat_template.hpp"
#include "nexus/io/gguf.hpp"
#include "nexus/registry/registry.hpp"
#include "nexus/tokenizer/tokenizer.hpp"

namespace nexus::cli {

/// The chat template of a checkpoint (GGUF metadata, or the folder's tokenizer_config.json /
/// chat_template.jinja), or a named error when it has none.
inline chat::chat_template load_chat_template(const std::string& path) {
  const auto source =
      registry::is_gguf_path(path) ? chat::template_from_gguf(gguf::file(path)) : chat::template_from_folder(path);
  if (!source)
    throw unsupported_error(
        path, "has no chat template (tokenizer.chat_template / tokenizer_config.json chat_template); drop --chat");
  return chat::chat_template(*source, path + ": chat template");
}

/// One user message through a chat template, with the generation prompt: the text to encode without
/// adding special tokens (the template writes them).
inline std::string chat_prompt(const chat::chat_template& tpl, const tokenizer& tok, const std::string& user) {
  chat::options opts;
  opts.add_generation_prompt = true;
  return tpl.render(std::vector<chat::message>{{"user", user}}, chat::with_special_tokens(tok, opts));
}

}  // namespace nexus::cli
