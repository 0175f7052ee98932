"""CPU benchmark: Nexus, llama.cpp (llama-cpp-python) and PyTorch eager (transformers) side by side on the real
models' GGUF files, same token ids, same thread counts; then fidelity against transformers' fp32 logits.
Run through bench/cpu/run.sh, which sets up the environment and builds `nexus`.

Speed: every (engine, model, threads) configuration runs in its own process (a clean peak resident memory),
prefilling each prompt length from an empty cache, then decoding greedy tokens one forward each; best of the
repeats. Fidelity: all-position logits of one reference prompt from transformers fp32 (the reference),
llama.cpp, Nexus stored and Nexus fp32: NMSE, max |diff|, top-1 agreement; greedy continuations of three
prompts, and where each engine parts from the reference.

Writes bench/results/cpu-<date>.json (raw figures, machine, commit, versions, command) and
bench/results/cpu.png, and prints a summary with the ratios Nexus / llama.cpp and Nexus / PyTorch.
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

MODELS = {  # name: file in the model cache (tools/fetch_models.sh)
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
}

# The speed prompt: this text through the model's tokenizer (transformers' reading of the GGUF file), once with
# the special tokens and then repeated without them up to the longest prompt length.
SPEED_TEXT = (
    "The history of the printing press begins in the fifteenth century, when Johannes Gutenberg combined a screw "
    "press, oil-based ink and movable metal type into one process. Within fifty years presses were running in more "
    "than two hundred cities across Europe, and the price of books fell so far that a student could own the texts "
    "he studied. Scholars argue about how quickly literacy followed, but few doubt that cheap printed pamphlets "
    "changed how news, science and religious arguments travelled. ")

# The fidelity prompt: its first FIDELITY_TOKENS tokens.
FIDELITY_TEXT = (
    "Photosynthesis is the process by which green plants, algae and some bacteria turn light into chemical energy. "
    "In the chloroplasts, chlorophyll absorbs mostly blue and red light; the energy splits water molecules, "
    "releasing oxygen, and drives the synthesis of ATP and NADPH. In the Calvin cycle these carriers power the "
    "fixation of carbon dioxide into three-carbon sugars, which the plant turns into glucose, starch and cellulose. "
    "Nearly all the oxygen in the atmosphere and most of the energy in food chains can be traced back to this "
    "reaction, which is why ecologists call plants primary producers. Rates depend on light intensity, "
    "temperature and the concentration of carbon dioxide, and each can become the limiting factor.")
FIDELITY_TOKENS = 128

GREEDY_PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n",
    "Once upon a time, in a small village by the sea,",
]
GREEDY_TOKENS = 32


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_json(cmd, what):
    """Runs one configuration in its own process; its last stdout line is its JSON."""
    log(what)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        err = (p.stderr.strip().splitlines() or ["(no message)"])[-1]
        log(f"  FAILED ({p.returncode}): {err}")
        return {"error": err, "command": shlex.join(map(str, cmd))}
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["command"] = shlex.join(map(str, cmd))
    out["wall_s"] = time.perf_counter() - t0
    return out


def write_ids(path, ids):
    Path(path).write_text(",".join(map(str, ids)) + "\n")


def reference_tokenizer(models_dir, file):
    import transformers
    transformers.logging.set_verbosity_error()
    return transformers.AutoTokenizer.from_pretrained(str(models_dir), gguf_file=file)


def prompts_for(tok, longest):
    """The speed prompt (cycled to `longest`), the fidelity prompt and the greedy prompts, as token ids."""
    speed = tok(SPEED_TEXT)["input_ids"]
    more = tok(SPEED_TEXT, add_special_tokens=False)["input_ids"]
    while len(speed) < longest:
        speed += more
    fidelity = tok(FIDELITY_TEXT)["input_ids"][:FIDELITY_TOKENS]
    greedy = [tok(p)["input_ids"] for p in GREEDY_PROMPTS]
    return speed[:longest], fidelity, greedy


def logits_metrics(ref, x):
    ref, x = ref.astype(np.float64), x.astype(np.float64)
    if ref.shape != x.shape:
        return {"error": f"shape {list(x.shape)} vs reference {list(ref.shape)}"}
    diff = x - ref
    top1 = np.argmax(x, axis=1) == np.argmax(ref, axis=1)
    return {"nmse": float(np.sum(diff**2) / np.sum(ref**2)), "max_abs_diff": float(np.max(np.abs(diff))),
            "max_abs_ref": float(np.max(np.abs(ref))), "top1_agreement": float(np.mean(top1)),
            "positions": int(ref.shape[0])}


def parting(ref, seq):
    """The first index where `seq` differs from `ref` (None: identical)."""
    for i, (a, b) in enumerate(zip(ref, seq)):
        if a != b:
            return i
    return None if len(ref) == len(seq) else min(len(ref), len(seq))


def machine_info():
    info = {"platform": platform.platform(), "python": platform.python_version(), "cores": os.cpu_count(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        for line in cpuinfo.splitlines():
            if line.startswith("model name") and "cpu_model" not in info:
                info["cpu_model"] = line.split(":", 1)[1].strip()
            if line.startswith("flags") and "cpu_flags" not in info:
                info["cpu_flags"] = line.split(":", 1)[1].split()
        simd = ["avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                "avx512_fp16", "avx_vnni", "amx_tile"]
        info["simd"] = [f for f in simd if f in info.get("cpu_flags", [])]
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()
        info["memory_bytes"] = int(mem[1]) * 1024
    except OSError:
        pass
    return info


def versions():
    out = {}
    for pkg in ["llama-cpp-python", "torch", "transformers", "tokenizers", "gguf", "numpy", "matplotlib",
                "safetensors", "accelerate"]:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    try:
        out["compiler"] = subprocess.run(["c++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        out["compiler"] = None
    return out


def git_commit():
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "HEAD") or "unknown"
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nexus", type=Path, default=REPO / "build" / "nexus", help="the nexus binary")
    ap.add_argument("--models-dir", type=Path,
                    default=Path(os.environ.get("NEXUS_MODELS", Path.home() / ".cache" / "nexus" / "models")))
    ap.add_argument("--models", default="smollm2,gemma3", help=f"comma-separated, of {','.join(MODELS)}")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--prompt-tokens", default="128,512")
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3, help="repeats of Nexus stored and llama.cpp (best is kept)")
    ap.add_argument("--slow-repeat", type=int, default=1, help="repeats of PyTorch eager and Nexus fp32")
    ap.add_argument("--engines", default="nexus,nexus-fp32,llama.cpp,pytorch",
                    help="engines timed (fidelity always runs all four unless --no-fidelity)")
    ap.add_argument("--no-fidelity", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--label", default="", help="added to the result file name, e.g. 'slow-path'")
    a = ap.parse_args()

    models = [m for m in a.models.split(",") if m]
    for m in models:
        if m not in MODELS:
            sys.exit(f"bench: unknown model '{m}' (known: {', '.join(MODELS)})")
    threads = [int(t) for t in a.threads.split(",")]
    lengths = [int(n) for n in a.prompt_tokens.split(",")]
    engines = [e for e in a.engines.split(",") if e]
    if not a.nexus.exists():
        sys.exit(f"bench: {a.nexus} is missing (bash tools/build.sh)")
    py = sys.executable
    peers = str(HERE / "peers.py")
    work = Path(tempfile.mkdtemp(prefix="nexus-cpu-bench-"))
    started = time.time()

    result = {
        "benchmark": "cpu", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": os.environ.get("NEXUS_BENCH_COMMAND") or shlex.join(["python", *sys.argv]), "machine": machine_info(),
        **git_commit(), "versions": versions(),
        "settings": {"threads": threads, "prompt_tokens": lengths, "decode_tokens": a.decode, "repeat": a.repeat,
                     "slow_repeat": a.slow_repeat, "engines": engines,
                     "llama.cpp": "llama-cpp-python Llama(n_ctx=n_batch=n_ubatch=longest+decode, n_threads="
                                  "n_threads_batch=T), eval() per token, argmax of the last logits",
                     "pytorch": "transformers from_pretrained(gguf_file=..., dtype=float32, attn_implementation=sdpa)"
                                ", torch.set_num_threads(T), inference_mode, DynamicCache, logits_to_keep=1",
                     "nexus": "nexus bench --threads T --precision stored|fp32"},
        "models": {},
    }
    for name in models:
        file = MODELS[name]
        path = a.models_dir / file
        if not path.exists():
            sys.exit(f"bench: {path} is missing (bash tools/fetch_models.sh)")
        tok = reference_tokenizer(a.models_dir, file)
        speed_ids, fidelity_ids, greedy_ids = prompts_for(tok, max(lengths))
        ids_file, fid_file = work / f"{name}-speed.txt", work / f"{name}-fidelity.txt"
        write_ids(ids_file, speed_ids)
        write_ids(fid_file, fidelity_ids)
        entry = {"file": file, "weight_bytes_on_disk": path.stat().st_size, "speed": [], "prompt_ids": speed_ids,
                 "fidelity_ids": fidelity_ids}
        pt = ",".join(map(str, lengths))

        for t in threads:
            for engine in engines:
                common = ["--threads", str(t), "--prompt-tokens", pt, "--decode", str(a.decode)]
                if engine in ("nexus", "nexus-fp32"):
                    prec = "fp32" if engine == "nexus-fp32" else "stored"
                    rep = a.slow_repeat if prec == "fp32" else a.repeat
                    cmd = [a.nexus, "bench", path, "--ids", ids_file, "--precision", prec, "--repeat", str(rep),
                           "--json", *common]
                    r = run_json(cmd, f"{name}: {engine}, {t} thread(s)")
                    if "runs" in r:  # one thread count per process: flatten
                        run = r.pop("runs")[0]
                        r.update(run)
                elif engine in ("llama.cpp", "pytorch"):
                    kind = "llama" if engine == "llama.cpp" else "torch"
                    rep = a.repeat if kind == "llama" else a.slow_repeat
                    cmd = [py, peers, kind, "speed", path, ids_file, "--repeat", str(rep), *common]
                    r = run_json(cmd, f"{name}: {engine}, {t} thread(s)")
                else:
                    sys.exit(f"bench: unknown engine '{engine}'")
                r.pop("prompt_ids", None)
                r.update({"engine": engine, "threads": t})
                for res in r.get("results", []):
                    if res["prompt_tokens"] in lengths and res.get("generated") is not None:
                        res["generated_first_16"] = res.pop("generated")[:16]
                entry["speed"].append(r)

        if not a.no_fidelity:
            t = max(threads)
            fid = {"reference": "transformers fp32, eager attention", "prompt_tokens": len(fidelity_ids),
                   "engines": {}, "greedy": {"prompts": GREEDY_PROMPTS, "tokens": GREEDY_TOKENS, "engines": {}}}
            npy = {e: work / f"{name}-{e}.npy" for e in ["reference", "llama.cpp", "nexus", "nexus-fp32"]}
            run_json([py, peers, "torch", "logits", path, fid_file, "--threads", str(t), "--decode", "0",
                      "--logits-out", npy["reference"]], f"{name}: reference logits (transformers fp32)")
            run_json([py, peers, "llama", "logits", path, fid_file, "--threads", str(t), "--decode", "0",
                      "--logits-out", npy["llama.cpp"]], f"{name}: llama.cpp logits")
            for e, prec in [("nexus", "stored"), ("nexus-fp32", "fp32")]:
                run_json([a.nexus, "bench", path, "--ids", fid_file, "--precision", prec, "--threads", str(t),
                          "--decode", "0", "--repeat", "1", "--logits-out", npy[e], "--json"], f"{name}: {e} logits")
            ref = np.load(npy["reference"]) if npy["reference"].exists() else None
            for e in ["llama.cpp", "nexus", "nexus-fp32"]:
                if ref is None or not npy[e].exists():
                    fid["engines"][e] = {"error": "logits missing (see the log)"}
                else:
                    fid["engines"][e] = logits_metrics(ref, np.load(npy[e]))
            # Greedy continuations of the three prompts (the peers take them all in one process).
            seqs = {}
            prompts_file = work / f"{name}-greedy.txt"
            prompts_file.write_text("".join(",".join(map(str, ids)) + "\n" for ids in greedy_ids))
            for e, kind in [("reference", "torch"), ("llama.cpp", "llama")]:
                r = run_json([py, peers, kind, "greedy", path, prompts_file, "--threads", str(t), "--decode",
                              str(GREEDY_TOKENS)], f"{name}: greedy continuations, {e}")
                seqs[e] = r.get("generated") or [None] * len(greedy_ids)
            for e, prec in [("nexus", "stored"), ("nexus-fp32", "fp32")]:
                seqs[e] = []
                for i, ids in enumerate(greedy_ids):
                    f = work / f"{name}-greedy{i}.txt"
                    write_ids(f, ids)
                    r = run_json([a.nexus, "bench", path, "--ids", f, "--precision", prec, "--threads", str(t),
                                  "--decode", str(GREEDY_TOKENS), "--repeat", "1", "--json"],
                                 f"{name}: greedy continuation {i}, {e}")
                    seqs[e].append(r["runs"][0]["results"][0]["generated"] if "runs" in r else None)
            fid["greedy"]["reference_tokens"] = seqs["reference"]
            fid["greedy"]["reference_text"] = [tok.decode(s) if s else None for s in seqs["reference"]]
            for e in ["llama.cpp", "nexus", "nexus-fp32"]:
                rows = []
                for ref_seq, seq in zip(seqs["reference"], seqs[e]):
                    if ref_seq is None or seq is None:
                        rows.append({"error": "missing"})
                        continue
                    at = parting(ref_seq, seq)
                    rows.append({"identical": at is None, "parts_at": at, "tokens": seq,
                                 "text": tok.decode(seq) if at is not None else None})
                fid["greedy"]["engines"][e] = rows
            entry["fidelity"] = fid
        result["models"][name] = entry

    result["elapsed_s"] = time.time() - started
    result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    a.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    json_path = a.out / f"cpu-{stamp}{'-' + a.label if a.label else ''}.json"
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    png_path = a.out / f"cpu{'-' + a.label if a.label else ''}.png"
    from chart import draw
    draw(result, png_path)
    from summary import print_summary
    print_summary(result)
    print(f"\nwrote {json_path.relative_to(REPO) if json_path.is_relative_to(REPO) else json_path} and "
          f"{png_path.relative_to(REPO) if png_path.is_relative_to(REPO) else png_path} "
          f"({result['elapsed_s'] / 60:.1f} min)")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
