// The `nexus` command line. Exit codes: 0 ok, 1 a model failed (error, --check, parity), 2 bad usage.
#include <CLI/CLI.hpp>

#include <iostream>

#include "align.hpp"
#include "bench.hpp"
#include "bundle.hpp"
#include "commands.hpp"
#include "demo.hpp"
#include "extract.hpp"
#include "score.hpp"
#include "stitch_score.hpp"
#include "train_bridge.hpp"

int main(int argc, char** argv) {
  using namespace nexus::cli;
  CLI::App app{"Nexus: many transformer families through one set of universal blocks"};
  app.require_subcommand(1);

  std::vector<std::string> dirs;
  bool check = false, json = false;
  auto* inspect_cmd = app.add_subcommand("inspect", "Descriptors of checkpoints side by side");
  inspect_cmd->add_option("dirs", dirs, "Hugging Face checkpoint folders (config.json + *.safetensors) or .gguf files")
      ->required()
      ->check(CLI::ExistingPath);
  inspect_cmd->add_flag("--check", check,
                        "verify every expected tensor exists once with the right shape and none is unused");
  inspect_cmd->add_flag("--json", json, "print JSON instead of a table");

  std::string dir, ids, ref;
  int top = 5;
  device_args dev;
  auto add_cpu = [&](CLI::App* cmd, device_args& d) {
    cmd->add_option("--threads", d.threads, "CPU worker threads (0: every core)")->check(CLI::Range(0, 1 << 16));
  };
  auto add_device = [&](CLI::App* cmd, device_args& d) {
    cmd->add_option("--device", d.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
    cmd->add_option("--precision", d.precision,
                    "weights: on the cpu stored (default: as in the checkpoint) or fp32 (the exact reference); "
                    "on cuda fp32 (default), bf16 or fp16")
        ->check(CLI::IsMember({"stored", "fp32", "bf16", "fp16"}));
    add_cpu(cmd, d);
  };
  auto* run_cmd = app.add_subcommand("run", "Top-k next tokens at every position");
  add_device(run_cmd, dev);
  run_cmd->add_option("dir", dir, "checkpoint folder or .gguf file")->required()->check(CLI::ExistingPath);
  run_cmd->add_option("--ids", ids, "comma-separated token ids, e.g. 1,2,3")->required();
  run_cmd->add_option("--top", top, "how many tokens per position")->check(CLI::Range(1, 1000));

  auto* parity_cmd = app.add_subcommand("parity", "Compare every layer and the logits with a reference file");
  add_device(parity_cmd, dev);
  parity_cmd->add_option("dir", dir, "checkpoint folder or .gguf file")->required()->check(CLI::ExistingPath);
  parity_cmd
      ->add_option("--ref", ref,
                   "reference outputs (default DIR/outputs.safetensors, or NAME.outputs.safetensors beside NAME.gguf)")
      ->check(CLI::ExistingFile);

  generate_args gen;
  auto* gen_cmd = app.add_subcommand("generate", "Generate text from a prompt, streaming to stdout");
  gen_cmd->add_option("dir", gen.dir, "checkpoint folder with tokenizer.json, .gguf file, or .nexus bundle")
      ->required()
      ->check(CLI::ExistingPath);
  gen_cmd->add_option("--prompt", gen.prompt, "prompt text")->required();
  gen_cmd->add_option("--max-new-tokens", gen.max_new_tokens, "tokens to generate at most")
      ->check(CLI::Range(0, 1 << 20));
  gen_cmd->add_option("--temperature", gen.temperature, "0: greedy")->check(CLI::Range(0.0, 100.0));
  gen_cmd->add_option("--top-k", gen.top_k, "sample from the k most likely tokens (0: all)")
      ->check(CLI::Range(0, 1 << 30));
  gen_cmd->add_option("--top-p", gen.top_p, "sample from the smallest set reaching this probability")
      ->check(CLI::Range(0.0, 1.0));
  gen_cmd->add_option("--seed", gen.seed, "sampling seed");
  gen_cmd->add_option("--stop", gen.stop, "stop once the text contains this (repeatable)");
  gen_cmd->add_flag("--no-stream", gen.no_stream, "print the text at the end instead of streaming");
  gen_cmd->add_option("--max-bytes", gen.max_bytes, "a .nexus bundle: bytes to generate at most")
      ->check(CLI::Range(0, 1 << 20));
  gen_cmd->add_option("--mode", gen.mode, "a .nexus bundle: auto (the router if fitted), mixture, cascade, router");
  gen_cmd->add_flag("--chat", gen.chat, "send the prompt as a user message through the model's chat template");
  add_device(gen_cmd, gen.device);

  std::string models_dir = "tests/data/models";
  auto* demo_cmd =
      app.add_subcommand("demo", "The main job: shipped models side by side, checked against transformers, generating");
  demo_cmd->add_option("--models", models_dir, "folder of tiny checkpoint folders")->check(CLI::ExistingDirectory);
  std::string real_refs = "tests/data/real";
  bool no_real = false;
  demo_cmd
      ->add_option(
          "--references", real_refs,
          "references of the real models (tests/data/real); the models come from ${NEXUS_MODELS:-~/.cache/nexus/models}, filled by tools/fetch_models.sh")
      ->check(CLI::ExistingDirectory);
  demo_cmd->add_flag("--no-real", no_real, "only the tiny fixtures (no downloaded models needed)");
  device_args demo_dev;
  demo_cmd->add_option("--precision", demo_dev.precision, "weights: stored (default) or fp32 (the exact reference)")
      ->check(CLI::IsMember({"stored", "fp32"}));
  add_cpu(demo_cmd, demo_dev);

  bench_args bench_a;
  auto* bench_cmd = app.add_subcommand("bench", "CPU load time, prefill and decode tok/s, resident memory");
  bench_cmd->add_option("model", bench_a.model, "checkpoint folder or .gguf file")
      ->required()
      ->check(CLI::ExistingPath);
  bench_cmd
      ->add_option("--prompt-tokens", bench_a.prompt_tokens,
                   "prompt lengths to prefill, comma-separated (default 128,512; with --ids: its length)")
      ->delimiter(',')
      ->check(CLI::Range(std::int64_t(1), std::int64_t(1) << 20));
  bench_cmd->add_option("--decode", bench_a.decode, "greedy tokens decoded after each prompt, one forward each")
      ->check(CLI::Range(std::int64_t(0), std::int64_t(1) << 20));
  bench_cmd->add_option("--threads", bench_a.threads, "thread counts, comma-separated; 0: every core (default 0)")
      ->delimiter(',')
      ->check(CLI::Range(0, 1 << 16));
  bench_cmd->add_option("--precision", bench_a.precision, "weights: stored (default) or fp32")
      ->check(CLI::IsMember({"stored", "fp32"}));
  bench_cmd->add_option("--repeat", bench_a.repeat, "runs per measurement; the best is reported")
      ->check(CLI::Range(1, 1000));
  bench_cmd
      ->add_option("--ids", bench_a.ids_file,
                   "file of prompt token ids (comma or space separated), repeated to each length (default: a built-in "
                   "text through the model's tokenizer)")
      ->check(CLI::ExistingFile);
  bench_cmd->add_option("--logits-out", bench_a.logits_out,
                        "write the fp32 logits at every position of the first prompt to this .npy file");
  bench_cmd->add_flag("--json", bench_a.json, "print one JSON object instead of a table");

  extract_args ex;
  auto* extract_cmd = app.add_subcommand(
      "extract",
      "Teachers' hidden states, token spans and top-k log-probabilities over a corpus, into a feature store");
  extract_cmd->add_option("--teacher", ex.teachers, "checkpoint folder or .gguf file (repeat for each teacher)")
      ->required()
      ->check(CLI::ExistingPath);
  extract_cmd->add_option("--corpus", ex.corpus, "text files, folders of them, or .jsonl files with a \"text\" field")
      ->required()
      ->check(CLI::ExistingPath);
  extract_cmd->add_option("--layers", ex.layers, "residual stream after these layers: e.g. 6,-1,final (-1: the last)");
  extract_cmd->add_option("--topk", ex.top_k, "top-k next-token log-probabilities per token (0: none)")
      ->check(CLI::Range(0, 1 << 20));
  extract_cmd->add_option("--dtype", ex.dtype, "hidden states as bf16 or f32")->check(CLI::IsMember({"bf16", "f32"}));
  extract_cmd->add_option("--context", ex.context, "tokens per window")->check(CLI::Range(2, 1 << 20));
  extract_cmd->add_option("--out", ex.out, "store folder (created; an existing store of the same run is resumed)")
      ->required();
  extract_cmd->add_option("--shard-size", ex.shard_size, "size cap of a shard, e.g. 64MiB");
  extract_cmd->add_option("--budget", ex.budget,
                          "most bytes of teacher weights resident at once, e.g. 1.5GiB (0: no limit)");
  extract_cmd->add_option("--threads", ex.threads, "CPU threads (0: every core)")->check(CLI::Range(0, 1024));
  extract_cmd->add_option("--chunk-rows", ex.chunk_rows, "tokens per forward step (0: the backend's choice)")
      ->check(CLI::Range(0, 1 << 20));
  extract_cmd->add_flag("--quiet", ex.quiet, "no progress line even on a terminal");

  train_bridge_args tb;
  auto* train_cmd = app.add_subcommand("train-bridge",
                                       "Train a linear or MLP bridge between two teachers' layers on a feature store");
  train_cmd->add_option("--store", tb.store, "feature store folder (nexus extract)")
      ->required()
      ->check(CLI::ExistingDirectory);
  train_cmd->add_option("--from", tb.from, "A:i, teacher (index or name) and layer, e.g. 0:12")->required();
  train_cmd->add_option("--to", tb.to, "B:j, e.g. 1:-1 (KL: B's last layer)")->required();
  train_cmd->add_option("--kind", tb.kind, "linear or mlp")->check(CLI::IsMember({"linear", "mlp"}));
  train_cmd->add_option("--hidden", tb.hidden, "MLP hidden width")->check(CLI::Range(1, 1 << 20));
  train_cmd->add_option("--objective", tb.objective, "mse, cosine (hidden states) or kl (through B's head)")
      ->check(CLI::IsMember({"mse", "cosine", "kl"}));
  train_cmd->add_option("--init", tb.init, "closed-form (ridge, λ on held-out) or zero")
      ->check(CLI::IsMember({"closed-form", "zero"}));
  train_cmd->add_option("--head", tb.head, "B's checkpoint for its head (default: the store's source path)");
  train_cmd->add_option("--steps", tb.steps, "optimizer steps")
      ->check(CLI::Range(std::int64_t(0), std::int64_t(1) << 30));
  train_cmd->add_option("--batch", tb.batch, "pairs per step")->check(CLI::Range(1, 1 << 20));
  train_cmd->add_option("--lr", tb.lr, "peak learning rate")->check(CLI::PositiveNumber);
  train_cmd->add_option("--warmup", tb.warmup, "linear warm-up steps")->check(CLI::Range(0, 1 << 30));
  train_cmd->add_option("--min-lr-ratio", tb.min_lr_ratio, "the cosine ends at lr × this")->check(CLI::Range(0.0, 1.0));
  train_cmd->add_option("--weight-decay", tb.weight_decay, "AdamW's decoupled weight decay")
      ->check(CLI::Range(0.0, 10.0));
  train_cmd->add_option("--clip", tb.clip, "global gradient norm cap (0: none)")->check(CLI::Range(0.0, 1e9));
  train_cmd->add_option("--seed", tb.seed, "initialisation and batch order");
  train_cmd->add_option("--eval-every", tb.eval_every, "held-out loss every N steps")->check(CLI::Range(1, 1 << 30));
  train_cmd->add_option("--max-train", tb.max_train, "training pairs, evenly spaced over the store (0: all)")
      ->check(CLI::Range(std::int64_t(0), std::int64_t(1) << 40));
  train_cmd->add_option("--max-heldout", tb.max_heldout, "held-out pairs (0: all)")
      ->check(CLI::Range(std::int64_t(0), std::int64_t(1) << 40));
  train_cmd->add_option("--checkpoint", tb.checkpoint,
                        "checkpoint file, resumed when present (default OUT.checkpoint.safetensors)");
  train_cmd->add_option("--checkpoint-every", tb.checkpoint_every, "steps between checkpoints (0: none)")
      ->check(CLI::Range(0, 1 << 30));
  train_cmd->add_option("--threads", tb.threads, "CPU threads (0: every core)")->check(CLI::Range(0, 1024));
  train_cmd->add_option("--out", tb.out, "the bridge, .safetensors (curves beside it: OUT.curve.json, .png)")
      ->required();
  train_cmd->add_flag("--quiet", tb.quiet, "no progress line even on a terminal");

  // One `score`: a model or bundle scored byte by byte, or (--stitch) a stitched pair of teachers.
  score_args sc;
  stitch_args st;
  std::vector<std::string> score_texts;
  auto* score_cmd = app.add_subcommand(
      "score",
      "Bits per byte of a text under a model or a .nexus bundle (byte-level and canonical), or of a stitched pair");
  score_cmd->add_option("model", sc.model, "checkpoint folder, .gguf file or .nexus bundle (not with --stitch)")
      ->check(CLI::ExistingPath);
  score_cmd->add_option("--text", score_texts, "UTF-8 text file (--stitch: several, .jsonl one document a line)")
      ->check(CLI::ExistingFile);
  score_cmd->add_flag("--end", sc.with_end, "also score the end of the text (the eos token / end-of-text outcome)");
  score_cmd->add_flag("--json", sc.json, "print one JSON object");
  score_cmd->add_option("--threads", sc.threads, "CPU threads (0: every core)")->check(CLI::Range(0, 1024));
  score_cmd->add_option("--stitch", st.stitch, "A:i,B:j with A and B checkpoint folders or .gguf files");
  score_cmd->add_option("--bridge", st.bridge, "with --stitch: bridge file (nexus train-bridge)")
      ->check(CLI::ExistingFile);
  score_cmd->add_option("--heldout-of", st.heldout_of, "with --stitch: score the held-out documents of this store")
      ->check(CLI::ExistingDirectory);
  score_cmd
      ->add_option("--unigram-store", st.unigram_store,
                   "with --stitch: B's unigram, the mean of its stored top-k over this store's training documents")
      ->check(CLI::ExistingDirectory);
  score_cmd->add_option("--unigram-text", st.unigram_text, "with --stitch: B's unigram from its tokens of this text")
      ->check(CLI::ExistingFile);
  score_cmd->add_option("--context", st.context, "with --stitch: tokens per window")->check(CLI::Range(2, 1 << 20));

  align_args al;
  auto* align_cmd = app.add_subcommand(
      "align", "Closed-form maps between two teachers' hidden states in a feature store, scored on held-out documents");
  align_cmd->add_option("--store", al.store, "feature store folder (nexus extract)")->required();
  align_cmd->add_option("--from", al.from, "TEACHER:LAYER mapped from, e.g. 0:6 or NAME:-1 (teacher by index or name)")
      ->required();
  align_cmd->add_option("--to", al.to, "TEACHER:LAYER mapped to, e.g. 1:final")->required();
  align_cmd->add_option("--method", al.method, "ridge, procrustes, cca, ot or all")
      ->check(CLI::IsMember({"ridge", "procrustes", "cca", "ot", "all"}));
  align_cmd->add_flag("--all-layers", al.all_layers,
                      "every stored layer of the two teachers against every other (--from/--to name the teachers)");
  align_cmd
      ->add_option("--layers-from", al.layers_from,
                   "with --all-layers: only these stored layers of the --from teacher, e.g. 0,4,8,-1,final")
      ->delimiter(',');
  align_cmd->add_option("--layers-to", al.layers_to, "with --all-layers: only these stored layers of the --to teacher")
      ->delimiter(',');
  align_cmd->add_option("--epsilon", al.epsilon, "entropic regularisation of the OT method")
      ->check(CLI::Range(1e-6, 10.0));
  align_cmd->add_option("--threads", al.threads, "layer pairs fitted at once (each single-threaded)")
      ->check(CLI::Range(1, 1024));
  align_cmd->add_option("--batch-rows", al.batch_rows, "rows read at a time")->check(CLI::Range(1, 1 << 24));
  align_cmd->add_option("--out", al.out, "report (JSON)")->required();
  align_cmd->add_flag("--quiet", al.quiet, "no line per pair");
  bundle_args bun;
  auto* bundle_cmd = app.add_subcommand("bundle", "A .nexus bundle: one file for a fused system of teachers");
  bundle_cmd->require_subcommand(1);
  auto* bundle_create_cmd = bundle_cmd->add_subcommand("create", "Create a bundle of teachers (by size and sha256)");
  bundle_create_cmd->add_option("--teacher", bun.teachers, ".gguf file or checkpoint folder (repeat for each teacher)")
      ->required()
      ->check(CLI::ExistingPath);
  bundle_create_cmd->add_option("--name", bun.names, "a name per teacher (default: the file's stem)");
  bundle_create_cmd->add_option("--budget", bun.budget, "most bytes of teacher weights resident at once (0: no limit)");
  bundle_create_cmd->add_flag("--embed", bun.embed, "embed the teacher files in the bundle");
  bundle_create_cmd
      ->add_option("--fit", bun.fit,
                   "development text to fit the mixture, router and cascade on (.jsonl rows {prompt, answer} or "
                   "{text}; else documents separated by blank lines)")
      ->check(CLI::ExistingFile);
  bundle_create_cmd->add_option("--mixture", bun.mixture, "with --fit: linear, log_linear or entropy_gate");
  bundle_create_cmd->add_option("--prefix-bytes", bun.prefix_bytes, "with --fit: bytes of a prompt the router reads")
      ->check(CLI::Range(1, 1 << 20));
  bundle_create_cmd->add_option("--cascade-share", bun.cascade_share, "with --fit: target share of escalations")
      ->check(CLI::Range(0.0, 1.0));
  bundle_create_cmd->add_flag("--quiet", bun.quiet, "no progress line");
  bundle_create_cmd->add_option("-o,--out", bun.out, "the bundle file to write")->required();
  auto* bundle_inspect_cmd = bundle_cmd->add_subcommand("inspect", "The manifest of a bundle");
  bundle_inspect_cmd->add_option("file", bun.file, "bundle file")->required();
  bundle_inspect_cmd->add_flag("--json", bun.json, "the manifest as JSON");
  auto* bundle_verify_cmd =
      bundle_cmd->add_subcommand("verify", "Check that every teacher of a bundle is present, intact and readable");
  bundle_verify_cmd->add_option("file", bun.file, "bundle file")->required();

  auto* arch_cmd = app.add_subcommand("architectures", "The registered families and their traits, as a Markdown table");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "nexus: " << e.what() << " (see nexus --help)\n";
    return 2;
  }
  try {
    if (*inspect_cmd) return inspect(dirs, check, json);
    if (*run_cmd) return run(dir, ids, top, dev);
    if (*parity_cmd) return parity(dir, ref, dev);
    if (*gen_cmd && std::filesystem::path(gen.dir).extension() == ".nexus")
      return generate_bundle(gen.dir, gen.prompt, gen.max_bytes, gen.stop, gen.mode, !gen.no_stream);
    if (*gen_cmd) return generate_text(gen);
    if (*demo_cmd) return demo(models_dir, no_real ? std::string() : real_refs, demo_dev);
    if (*bench_cmd) return bench(bench_a);
    if (*extract_cmd) return extract_store(ex);
    if (*train_cmd) return train_bridge(tb);
    if (*score_cmd && !st.stitch.empty()) {
      if (!sc.model.empty()) throw nexus::usage_error("score", "give a model or --stitch, not both");
      if (st.bridge.empty()) throw nexus::usage_error("score", "--stitch needs --bridge");
      st.text = score_texts, st.json = sc.json, st.threads = sc.threads;
      return score_stitched(st);
    }
    if (*score_cmd) {
      if (sc.model.empty()) throw nexus::usage_error("score", "give a model, a .nexus bundle, or --stitch");
      if (score_texts.size() != 1) throw nexus::usage_error("score", "give one --text file");
      sc.text_file = score_texts[0];
      return score(sc);
    }
    if (*align_cmd) return align_store(al);
    if (*bundle_create_cmd) return bundle_create(bun);
    if (*bundle_inspect_cmd) return bundle_inspect(bun);
    if (*bundle_verify_cmd) return bundle_verify(bun);
    if (*arch_cmd) fmt::print("{}", nexus::registry::architecture_table_markdown());
  } catch (const nexus::usage_error& e) {
    fmt::print(stderr, "nexus: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "nexus: {}\n", e.what());
    return 1;
  }
  return 0;
}
