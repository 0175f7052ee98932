// A program outside the tree, built against the installed package. Between the markers: the README's
// snippet, byte for byte (run.cmake checks it).
#include <cstdio>
#include <string>

// README begin
#include <nexus/backend/cpu/model.hpp>
#include <nexus/generate/generate.hpp>  // target nexus::tokenizer

// name: a checkpoint folder, a .gguf file, or a Hugging Face id in the local cache ("Qwen/Qwen2.5-0.5B")
std::string continue_text(const std::string& name, const std::string& prompt) {
  auto model = nexus::load_cpu_model(name, {.threads = 0});  // 0: every core
  auto tok = nexus::tokenizer::load(name);
  auto out = nexus::generate(*model, &tok, tok.encode(prompt, true), {.max_new_tokens = 32});
  return out.text;  // generation ends at the model's own end tokens (eos, generation_config.json, GGUF eot)
}
// README end

#include <nexus/nexus.hpp>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const auto n = nexus::registry::describe(std::filesystem::path(argv[1]));
  std::printf("%s %lld\n", n.family.c_str(), static_cast<long long>(n.dims.hidden_size));
  const auto text = continue_text(argv[1], "Hello");
  std::fprintf(stderr, "generated %zu bytes\n", text.size());
  return 0;
}
