"""The chart of bench/cpu/run.py: per model, prefill and decode tok/s and peak resident memory, bars per engine
and thread count."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from summary import ENGINES, result_for, speed_rows  # noqa: E402

COLORS = {"nexus": "#1f77b4", "nexus-fp32": "#9ecae1", "llama.cpp": "#ff7f0e", "pytorch": "#2ca02c"}


def bars(ax, groups, values, title, unit, fmt="{:.0f}"):
    """groups: labels on x; values: {engine: [value or None per group]}."""
    engines = [e for e in ENGINES if e in values and any(v for v in values[e])]
    width = 0.8 / max(1, len(engines))
    for i, e in enumerate(engines):
        xs = [g + (i - (len(engines) - 1) / 2) * width for g in range(len(groups))]
        ys = [v or 0 for v in values[e]]
        rects = ax.bar(xs, ys, width, label=e, color=COLORS[e])
        for r, v in zip(rects, values[e]):
            if v:
                ax.annotate(fmt.format(v), (r.get_x() + r.get_width() / 2, r.get_height()), ha="center",
                            va="bottom", fontsize=7, xytext=(0, 1), textcoords="offset points")
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit, fontsize=8)
    ax.margins(y=0.15)
    ax.grid(axis="y", alpha=0.3)


def draw(result, path):
    s = result["settings"]
    models = list(result["models"].items())
    fig, axes = plt.subplots(len(models), 3, figsize=(17, 4.6 * len(models)), squeeze=False,
                             gridspec_kw={"width_ratios": [2, 1.2, 1]})
    for row, (name, entry) in zip(axes, models):
        runs = speed_rows(entry)
        pre_groups = [f"{t} thr\n{n} tok" for t in s["threads"] for n in s["prompt_tokens"]]
        pre, dec, mem = {}, {}, {}
        n0 = s["prompt_tokens"][0]
        for e in ENGINES:
            pre[e] = [(result_for(runs[(e, t)], n) or {}).get("prefill_tok_s") if (e, t) in runs else None
                      for t in s["threads"] for n in s["prompt_tokens"]]
            dec[e] = [(result_for(runs[(e, t)], n0) or {}).get("decode_tok_s") if (e, t) in runs else None
                      for t in s["threads"]]
            mem[e] = [runs[(e, t)]["peak_rss_bytes"] / 1e6 if (e, t) in runs else None for t in s["threads"]]
        thr = [f"{t} thread{'s' if t > 1 else ''}" for t in s["threads"]]
        bars(row[0], pre_groups, pre, f"{name}: prefill (higher is better)", "tokens/s")
        bars(row[1], thr, dec, f"{name}: decode {s['decode_tokens']} tokens after {n0} (higher is better)",
             "tokens/s", "{:.1f}")
        bars(row[2], thr, mem, f"{name}: peak resident memory (lower is better)", "MB")
        disk = entry["weight_bytes_on_disk"] / 1e6
        disk = entry["weight_bytes_on_disk"] / 1e6
        line = row[2].axhline(disk, color="dimgray", ls="--", lw=1)
        row[2].legend([line], [f"GGUF file: {disk:.0f} MB"], fontsize=7, loc="upper left")
        row[0].legend(fontsize=8, loc="upper left")
    m = result["machine"]
    fig.suptitle(f"Nexus CPU benchmark, {result['date'][:10]}, commit {result['commit'][:10]}"
                 f"{' (dirty)' if result.get('dirty') else ''}; {m.get('cpu_model', '?')}, {m.get('cores')} cores; "
                 f"best of {s['repeat']} (PyTorch and Nexus fp32: {s['slow_repeat']}); load average at start "
                 f"{m.get('loadavg_start', ['?'])[0]}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
