#!/usr/bin/env python3
"""Checks a feature store (nexus extract) against transformers: for some windows of each teacher, runs
the stored token ids through the teacher in transformers and compares the hidden states at the tapped
layers (forward hooks on the decoder layers for "layer<i>", output_hidden_states[-1] for "final") and
the top-k log-probabilities.

A benchmark-side check: the C++ tests never need Python. Run it with the venv that loads the teachers:
  /work/venv-t5/bin/python tools/fusion/check_store.py STORE [--windows 4]
GGUF teachers load with from_pretrained(folder, gguf_file=name) (dequantised to fp32), folders as they are;
fp32 compute and eager attention, as the project's reference fixtures (tools/fixtures).
Exit status 0 when every compared tensor is within bounds, 1 otherwise.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM


def load_teacher(path):
    if os.path.isdir(path):
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    return AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(path)), gguf_file=os.path.basename(path),
                                                dtype=torch.float32, attn_implementation="eager")


def decoder_layers(model):
    for attr in ("model.layers", "model.decoder.layers", "transformer.h", "gpt_neox.layers"):
        obj = model
        try:
            for part in attr.split("."):
                obj = getattr(obj, part)
            return obj
        except AttributeError:
            continue
    raise SystemExit("cannot find the decoder layers of " + type(model).__name__)


def read_windows(store, manifest, teacher, limit):
    """(ids, {key: rows}, topk_logprobs, topk_ids) of the first `limit` non-empty windows of a teacher."""
    out = []
    t = f"t{teacher}."
    keys = manifest["identity"]["teachers"][teacher]["layer_keys"]
    k = manifest["identity"]["arguments"]["top_k"]
    for shard in manifest["shards"]:
        with safe_open(os.path.join(store, shard["file"]), framework="pt") as f:
            offsets = f.get_tensor(t + "window_offsets").tolist()
            ids = f.get_tensor(t + "ids")
            hidden = {key: f.get_tensor(t + key).float() for key in keys}
            topk = (f.get_tensor(t + "topk_logprobs"), f.get_tensor(t + "topk_ids")) if k else None
            for w in range(len(offsets) - 1):
                a, b = offsets[w], offsets[w + 1]
                if a == b:
                    continue
                out.append((ids[a:b].long(), {key: v[a:b] for key, v in hidden.items()},
                            None if topk is None else (topk[0][a:b], topk[1][a:b])))
                if len(out) == limit:
                    return out
    return out


def stats(ours, ref):
    d = (ours.double() - ref.double())
    max_abs = d.abs().max().item()
    max_ref = ref.abs().max().item()
    nmse = (d.pow(2).sum() / ref.double().pow(2).sum().clamp_min(1e-30)).item()
    return max_abs, max_ref, nmse


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("store")
    ap.add_argument("--windows", type=int, default=4, help="windows per teacher to check")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    manifest = json.load(open(os.path.join(args.store, "manifest.json")))
    ident = manifest["identity"]
    bf16 = ident["arguments"]["dtype"] == "bf16"
    # fp32: the project's parity bounds; bf16: the store's rounding (2^-8 relative) on top.
    rel_max, nmse_max = (2 ** -7, 2e-5) if bf16 else (1e-4, 1e-8)
    ok = True
    for ti, (teacher, path) in enumerate(zip(ident["teachers"], manifest["sources"]["teachers"])):
        model = load_teacher(path).eval()
        layers = decoder_layers(model)
        captured = {}
        hooks = [layer.register_forward_hook(
            lambda mod, inp, out, i=i: captured.__setitem__(i, (out[0] if isinstance(out, tuple) else out)[0]))
            for i, layer in enumerate(layers)]
        for wi, (ids, hidden, topk) in enumerate(read_windows(args.store, manifest, ti, args.windows)):
            with torch.no_grad():
                out = model(ids[None], output_hidden_states=True)
            for key, rows in hidden.items():
                ref = out.hidden_states[-1][0] if key == "final" else captured[int(key[5:])]
                m, r, n = stats(rows, ref.float())
                good = m <= rel_max * max(1.0, r) and n <= nmse_max
                ok &= good
                print(f"{teacher['name']} window {wi} {key}: max|d| {m:.3e} (max|ref| {r:.3e}) NMSE {n:.3e} "
                      f"{'ok' if good else 'OUT OF BOUNDS'}")
            if topk is not None:
                lp = torch.log_softmax(out.logits[0].double(), dim=-1)
                ours_lp, ours_ids = topk
                ref_lp = lp.gather(1, ours_ids.long())
                m = (ref_lp - ours_lp.double()).abs().max().item()
                top1 = (lp.argmax(-1) == ours_ids[:, 0].long()).float().mean().item()
                good = m <= 1e-3 and top1 >= 0.99
                ok &= good
                print(f"{teacher['name']} window {wi} top-k: max|d logprob| {m:.3e}, top-1 agreement {top1:.3f} "
                      f"{'ok' if good else 'OUT OF BOUNDS'}")
        for h in hooks:
            h.remove()
    print("check_store:", "pass" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
