"""The peers of `nexus bench`, one configuration per process (a clean peak resident memory), printing one
JSON object on stdout in the shape `nexus bench --json` prints:

  peers.py llama speed  MODEL.gguf IDS_FILE --threads T --prompt-tokens 128,512 --decode 128 --repeat R
  peers.py torch speed  MODEL.gguf IDS_FILE --threads T --prompt-tokens 128,512 --decode 128 --repeat R
  peers.py llama logits MODEL.gguf IDS_FILE --threads T --logits-out FILE.npy   (every position)
  peers.py torch logits MODEL.gguf IDS_FILE --threads T --logits-out FILE.npy   (the fp32 reference)
  peers.py llama greedy MODEL.gguf IDS_FILE --threads T --decode 32       (IDS_FILE: one prompt a line)
  peers.py torch greedy MODEL.gguf IDS_FILE --threads T --decode 32

llama.cpp runs through llama-cpp-python on the GGUF file as it is (n_threads and n_threads_batch = T, one batch
for the whole prompt); PyTorch eager runs transformers' model on the same file dequantised to fp32
(from_pretrained(dir, gguf_file=...)). Prefill is one call on the prompt; decode is one call per greedy token over
the cache. Timings are best of the repeats, each from an empty cache.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def resident_memory():
    """VmHWM (peak) and VmRSS (current) of this process in bytes."""
    out = {"peak": -1, "current": -1}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                out["peak"] = int(line.split()[1]) * 1024
            elif line.startswith("VmRSS:"):
                out["current"] = int(line.split()[1]) * 1024
    return out


def cycled(ids, n):
    return [ids[i % len(ids)] for i in range(n)]


class llama_engine:
    """llama.cpp through llama-cpp-python's Llama object, driven token by token with its eval()."""

    def __init__(self, model, threads, n_ctx, logits_all=False):
        import llama_cpp
        self.llm = llama_cpp.Llama(model_path=str(model), n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx,
                                   n_threads=threads, n_threads_batch=threads, logits_all=logits_all,
                                   verbose=False)
        self.vocab = self.llm.n_vocab()

    def last_logits(self):
        ptr = self.llm._ctx.get_logits_ith(-1)
        return np.ctypeslib.as_array(ptr, shape=(self.vocab,))

    def prefill(self, ids):
        self.llm.reset()
        self.llm.eval(ids)
        return int(np.argmax(self.last_logits()))

    def step(self, token):
        self.llm.eval([token])
        return int(np.argmax(self.last_logits()))

    def all_logits(self, ids):
        self.llm.reset()
        self.llm.eval(ids)
        return np.array(self.llm.scores[:len(ids)], dtype=np.float32)


class torch_engine:
    """transformers' model, fp32, eager (no compilation), with its own DynamicCache (`cache`, transformers 5)."""

    def __init__(self, model, threads, attn="sdpa"):
        import torch
        import transformers
        torch.set_num_threads(threads)
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        self.torch = torch
        path = Path(model)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32, attn_implementation=attn).eval()
        self.past = None

    def _run(self, ids):
        t = self.torch
        with t.inference_mode():
            out = self.model(input_ids=t.tensor([ids], dtype=t.int64), cache=self.past, use_cache=True,
                             logits_to_keep=1)
        self.past = out.cache
        return int(t.argmax(out.logits[0, -1]))

    def prefill(self, ids):
        self.past = None
        return self._run(ids)

    def step(self, token):
        return self._run([token])

    def all_logits(self, ids):
        t = self.torch
        with t.inference_mode():
            out = self.model(input_ids=t.tensor([ids], dtype=t.int64), use_cache=False)
        return out.logits[0].float().numpy()


def make_engine(kind, model, threads, n_ctx, task):
    if kind == "llama":
        return llama_engine(model, threads, n_ctx, logits_all=task == "logits")
    # The reference (logits, greedy) runs eager attention, as tests/data/real's references do; speed runs sdpa.
    return torch_engine(model, threads, attn="sdpa" if task == "speed" else "eager")


def greedy(engine, ids, decode):
    tokens, token = [], engine.prefill(ids)
    for _ in range(decode):
        tokens.append(token)
        token = engine.step(token)
    return tokens


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engine", choices=["llama", "torch"])
    ap.add_argument("task", choices=["speed", "logits", "greedy"])
    ap.add_argument("model", type=Path)
    ap.add_argument("ids", type=Path)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--prompt-tokens", default="")
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--logits-out", type=Path)
    a = ap.parse_args()

    prompts = [[int(x) for x in line.replace(",", " ").split()] for line in a.ids.read_text().splitlines()]
    prompts = [p for p in prompts if p]
    ids = [x for p in prompts for x in p]
    lengths = [int(x) for x in a.prompt_tokens.split(",") if x] or [max(map(len, prompts))]
    before = resident_memory()
    t0 = time.perf_counter()
    n_ctx = max(lengths) + max(a.decode, 1)
    engine = make_engine(a.engine, a.model, a.threads, n_ctx, a.task)
    load_s = time.perf_counter() - t0
    after_load = resident_memory()
    out = {"engine": a.engine, "model": str(a.model), "threads": a.threads, "load_s": load_s,
           "rss_before_load_bytes": before["current"], "rss_after_load_bytes": after_load["current"]}
    if a.task == "speed":
        results = []
        for n in lengths:
            prompt = cycled(ids, n)
            best_prefill = best_decode = float("inf")
            generated = None
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                token = engine.prefill(prompt)
                t1 = time.perf_counter()
                tokens = []
                for _ in range(a.decode):
                    tokens.append(token)
                    token = engine.step(token)
                t2 = time.perf_counter()
                best_prefill, best_decode = min(best_prefill, t1 - t0), min(best_decode, t2 - t1)
                generated = generated or tokens
            results.append({"prompt_tokens": n, "decode_tokens": a.decode, "prefill_s": best_prefill,
                            "prefill_tok_s": n / best_prefill, "decode_s": best_decode,
                            "decode_tok_s": a.decode / best_decode if a.decode else 0.0, "generated": generated})
        out["results"] = results
    elif a.task == "logits":
        logits = engine.all_logits(ids)
        np.save(a.logits_out, logits.astype(np.float32))
        out["logits_out"] = str(a.logits_out)
    else:
        out["generated"] = [greedy(engine, p, a.decode) for p in prompts]
    mem = resident_memory()
    out["rss_bytes"], out["peak_rss_bytes"] = mem["current"], mem["peak"]
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
