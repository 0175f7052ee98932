"""The end-of-run summary of bench/cpu/run.py: speed and memory per engine with the ratios Nexus / llama.cpp and
Nexus / PyTorch, then fidelity against the transformers fp32 reference."""

ENGINES = ["nexus", "nexus-fp32", "llama.cpp", "pytorch"]


def speed_rows(entry):
    """{(engine, threads): run} for the runs that finished."""
    return {(r["engine"], r["threads"]): r for r in entry["speed"] if "results" in r}


def result_for(run, n):
    return next((x for x in run["results"] if x["prompt_tokens"] == n), None)


def table(header, rows):
    width = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header, ["-" * w for w in width], *rows]:
        print("  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(row, width))))


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def print_summary(result):
    s = result["settings"]
    m = result["machine"]
    load = max(m.get("loadavg_start", [0])[0], m.get("loadavg_end", [0])[0])
    if load > 0.5 * (m.get("cores") or 1):
        print(f"WARNING: load average {load} on {m.get('cores')} cores while benchmarking: other work shared the "
              "CPUs, so these timings understate every engine, unevenly (spinning thread pools suffer most)")
    for name, entry in result["models"].items():
        runs = speed_rows(entry)
        print(f"\n== {name} ({entry['file']}, {entry['weight_bytes_on_disk'] / 1e6:.1f} MB on disk) ==")
        rows = []
        for t in s["threads"]:
            for n in s["prompt_tokens"]:
                for what in ["prefill", "decode"]:
                    vals = {}
                    for e in ENGINES:
                        r = runs.get((e, t))
                        x = result_for(r, n) if r else None
                        vals[e] = x[f"{what}_tok_s"] if x else None
                    label = f"{what} {n}" if what == "prefill" else f"decode {s['decode_tokens']} after {n}"
                    rows.append([f"{t}", label] + [f"{vals[e]:.1f}" if vals[e] else "-" for e in ENGINES] +
                                [ratio(vals["nexus"], vals["llama.cpp"]), ratio(vals["nexus"], vals["pytorch"])])
            mem = {e: runs[(e, t)]["peak_rss_bytes"] if (e, t) in runs else None for e in ENGINES}
            rows.append([f"{t}", "peak RSS MB"] + [f"{mem[e] / 1e6:.0f}" if mem[e] else "-" for e in ENGINES] +
                        [ratio(mem["nexus"], mem["llama.cpp"]), ratio(mem["nexus"], mem["pytorch"])])
        table(["threads", "tok/s"] + ENGINES + ["nexus/llama.cpp", "nexus/pytorch"], rows)
        for e in ["nexus", "nexus-fp32"]:
            for t in s["threads"]:
                r = runs.get((e, t))
                if not r:
                    continue
                kv = max(x.get("kv_cache_bytes", 0) for x in r["results"])
                bound = 1.15 * entry["weight_bytes_on_disk"] + kv
                print(f"  {e}, {t} thread(s): resident after load {r['rss_after_load_bytes'] / 1e6:.0f} MB, peak "
                      f"{r['peak_rss_bytes'] / 1e6:.0f} MB; 1.15 x file + KV cache ({kv / 1e6:.1f} MB) = "
                      f"{bound / 1e6:.0f} MB (peak / that: {r['peak_rss_bytes'] / bound:.2f})")
        failed = [f"{r['engine']} ({r['threads']} threads): {r['error']}" for r in entry["speed"] if "error" in r]
        for f in failed:
            print(f"  FAILED {f}")
        fid = entry.get("fidelity")
        if not fid:
            continue
        print(f"\nfidelity vs {fid['reference']}, {fid['prompt_tokens']}-token prompt; greedy "
              f"{fid['greedy']['tokens']} tokens from {len(fid['greedy']['prompts'])} prompts")
        rows = []
        for e, m in fid["engines"].items():
            g = fid["greedy"]["engines"].get(e, [])
            same = sum(1 for x in g if x.get("identical"))
            parts = ",".join("missing" if "error" in x else str(x["parts_at"]) for x in g if not x.get("identical"))
            if "error" in m:
                rows.append([e, m["error"], "", "", f"{same}/{len(g)}", parts])
            else:
                rows.append([e, f"{m['nmse']:.2e}", f"{m['max_abs_diff']:.2e}", f"{100 * m['top1_agreement']:.1f}%",
                             f"{same}/{len(g)}", parts or "-"])
        table(["engine", "NMSE", "max|diff|", "top-1 agree", "greedy identical", "parts at token"], rows)
