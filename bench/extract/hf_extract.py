#!/usr/bin/env python3
"""The obvious transformers extraction, for comparison with `nexus extract`: each teacher in turn reads
the same windows (the token ids of a nexus feature store, so both runs see identical inputs) with
output_hidden_states=True, keeps the hidden states of the same layers (bf16) and the top-k
log-probabilities in memory, and writes them with safetensors at the end. Prints one JSON line:
tokens, seconds (load + forward + write), forward-only seconds, peak RSS.

  python hf_extract.py STORE OUT.safetensors --threads N
"""
import argparse
import json
import os
import resource
import time

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    manifest = json.load(open(os.path.join(args.store, "manifest.json")))
    ident = manifest["identity"]
    top_k = ident["arguments"]["top_k"]
    result, tokens, forward_s = {}, 0, 0.0
    for ti, (teacher, path) in enumerate(zip(ident["teachers"], manifest["sources"]["teachers"])):
        if os.path.isdir(path):
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        else:
            model = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(path)),
                                                         gguf_file=os.path.basename(path), dtype=torch.float32)
        model.eval()
        # "layer<i>": the residual stream after decoder layer i = hidden_states[i + 1] (the last layer's
        # entry is after the final norm in transformers, so "final" is hidden_states[-1]).
        keys = teacher["layer_keys"]
        pick = [(k, -1 if k == "final" else int(k[5:]) + 1) for k in keys]
        windows = []
        for shard in manifest["shards"]:
            with safe_open(os.path.join(args.store, shard["file"]), framework="pt") as f:
                offsets = f.get_tensor(f"t{ti}.window_offsets").tolist()
                ids = f.get_tensor(f"t{ti}.ids").long()
                windows += [ids[a:b] for a, b in zip(offsets, offsets[1:]) if b > a]
        hidden = {k: [] for k in keys}
        lps, lids = [], []
        t0 = time.perf_counter()
        with torch.no_grad():
            for w in windows:
                out = model(w[None], output_hidden_states=True)
                for k, i in pick:
                    hidden[k].append(out.hidden_states[i][0].to(torch.bfloat16))
                if top_k:
                    v, i = torch.log_softmax(out.logits[0].float(), -1).topk(top_k, -1)
                    lps.append(v)
                    lids.append(i.int())
                tokens += w.numel()
        forward_s += time.perf_counter() - t0
        for k in keys:
            result[f"t{ti}.{k}"] = torch.cat(hidden[k])
        if top_k:
            result[f"t{ti}.topk_logprobs"] = torch.cat(lps)
            result[f"t{ti}.topk_ids"] = torch.cat(lids)
        del model
    save_file(result, args.out)
    seconds = time.perf_counter() - start
    print(json.dumps({"tokens": tokens, "seconds": seconds, "forward_seconds": forward_s,
                      "tokens_per_second": tokens / seconds, "forward_tokens_per_second": tokens / forward_s,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
