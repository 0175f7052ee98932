#!/usr/bin/env python3
"""The result writer of tools/gpu/proof.sh (Python 3 standard library only).

  result.py phase   OUT NAME STATUS EXIT WALL LIMIT REASON   one phase: OUT/NAME.json from OUT/raw/NAME/
  result.py summary OUT                                    OUT/summary.json from the phases' files, and a table
  result.py check   OUT                                    exit 0 when summary.json lists every phase ok or skipped*
  result.py markdown OUT                                   the ratios against the issue's targets, a Markdown table

Every record carries the device, driver, commit and mode (real run or dry run) from the environment
proof.sh sets (PROOF_DEVICE, PROOF_DRIVER, PROOF_COMMIT, PROOF_MODE, PROOF_ARGS). A phase's raw folder
holds what its programs wrote: *.json (kept as parsed JSON), *.jsonl (a list of records), *.xml (Catch2
JUnit reports, converted to JSON), commands.txt (the command lines run), log.txt (its output, tail kept).
"""
import datetime
import json
import os
import socket
import sys
import xml.etree.ElementTree as ET

PHASES = ["build", "memcheck", "racecheck", "parity", "accuracy", "bandwidth", "decode", "gemm", "attention",
          "norm_rope", "e2e"]


def env(name, default=""):
    return os.environ.get(name, default)


def junit_to_json(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    out = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "cases": []}
    for s in suites:
        for key in ("tests", "failures", "errors", "skipped"):
            out[key] += int(s.get(key, "0") or 0)
        for c in s.findall("testcase"):
            case = {"name": c.get("name"), "seconds": float(c.get("time", "0") or 0), "status": "passed"}
            for kind in ("failure", "error", "skipped"):
                for e in c.findall(kind):
                    case["status"] = "failed" if kind != "skipped" else "skipped"
                    case.setdefault("messages", []).append(((e.get("message") or "") + "\n" + (e.text or "")).strip())
            out["cases"].append(case)
    return out


def read_raw(folder):
    raw, commands, log_tail = {}, [], ""
    if not os.path.isdir(folder):
        return raw, commands, log_tail
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        try:
            if name == "commands.txt":
                with open(path) as f:
                    commands = [line.rstrip("\n") for line in f if line.strip()]
            elif name == "log.txt":
                with open(path, errors="replace") as f:
                    log_tail = f.read()[-4000:]
            elif name.endswith(".jsonl"):
                with open(path) as f:
                    raw[name] = [json.loads(line) for line in f if line.strip()]
            elif name.endswith(".json"):
                with open(path) as f:
                    raw[name] = json.load(f)
            elif name.endswith(".xml"):
                raw[name] = junit_to_json(path)
        except (ValueError, ET.ParseError, OSError) as e:  # a file cut short by a time limit: say so, keep going
            raw[name] = {"unreadable": str(e)}
    return raw, commands, log_tail


def common():
    return {
        "device": env("PROOF_DEVICE", "none"),
        "driver": env("PROOF_DRIVER", "none"),
        "commit": env("PROOF_COMMIT", "unknown"),
        "mode": env("PROOF_MODE", "real"),
        "host": socket.gethostname(),
        "proof_command": env("PROOF_ARGS"),
    }


def phase(out, name, status, exit_code, wall, limit, reason):
    raw, commands, log_tail = read_raw(os.path.join(out, "raw", name))
    record = {"phase": name, "status": status, "reason": reason, "exit_code": int(exit_code),
              "wall_seconds": round(float(wall), 3), "limit_seconds": int(limit), **common(),
              "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": commands, "raw": raw, "log_tail": log_tail}
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")


def load(out, name):
    try:
        with open(os.path.join(out, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def headline(name, rec):
    """The phase's figures against the issue's targets, from its raw records (empty when it produced none)."""
    raw = rec.get("raw", {})
    h = {}
    try:
        if name in ("parity", "accuracy"):
            rows = [r for v in raw.values() if isinstance(v, list) for r in v]
            h["fixtures"] = len({r.get("fixture") for r in rows})
            h["families"] = sorted({r.get("family") for r in rows if r.get("family")})
            h["failed"] = sorted({f"{r.get('fixture')}:{r.get('precision', 'fp32')}" for r in rows if not r.get("ok")})
            if name == "parity":
                cpu = [r["vs_cpu_logits"]["nmse"] for r in rows if "vs_cpu_logits" in r]
                h["max_nmse_vs_cpu"] = max(cpu) if cpu else None
            else:
                for p in ("bf16", "fp16"):
                    v = [r["nmse"] for r in rows if r.get("precision") == p]
                    h[f"max_{p}_nmse"] = max(v) if v else None
                h["bounds"] = {"bf16": 1e-3, "fp16": 1e-4}
        elif name in ("memcheck", "racecheck"):
            s = raw.get("sanitizer.json", {})
            h.update({k: s.get(k) for k in ("errors", "fixtures", "tests")})
        elif name == "bandwidth":
            b = raw.get("bandwidth.json", {}).get("bandwidth", {})
            h["copy_kernel_gb_per_s"] = b.get("copy_kernel_gb_per_s")
            h["spec_hbm_gb_per_s"] = raw.get("bandwidth.json", {}).get("spec_hbm_gb_per_s")
        elif name in ("decode", "e2e"):
            for k, v in raw.items():
                if isinstance(v, dict) and v.get("status") == "ok":
                    h[k.removesuffix(".json")] = {
                        key: v.get(key) for key in ("decode_ms_per_token", "decode_tokens_per_s", "prefill_tokens_per_s",
                                                    "load_s", "decode_fraction_of_measured_bandwidth") if key in v}
            if name == "decode":
                h["target_fraction"] = 0.8
        elif name == "gemm":
            g = raw.get("gemm.json", {}).get("gemm", {})
            h["worst_fraction_of_cublaslt_best"] = g.get("worst_fraction_of_cublaslt_best")
            h["target_fraction"] = 0.9
            h["measured_bf16_tflops"] = g.get("measured_bf16_tflops_8192_cubed")
        elif name == "attention":
            a = raw.get("attention.json", {}).get("attention", {})
            h["runs"] = [{k: r.get(k) for k in ("tokens", "tflops", "fraction_of_spec_bf16_peak")} for r in a.get("runs", [])]
            h["target_fraction"] = a.get("target_fraction")
        elif name == "norm_rope":
            n = raw.get("norm_rope.json", {}).get("norm_rope", {})
            h = {k: v.get("fraction_of_ceiling") for k, v in n.items() if isinstance(v, dict)}
            if n:
                h["target_fraction"] = 0.85
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        h["unreadable"] = str(e)
    return h


def summary(out):
    phases = []
    for name in PHASES:
        rec = load(out, name)
        if rec is None:
            phases.append({"phase": name, "status": "missing", "reason": f"no {name}.json"})
            continue
        phases.append({"phase": name, "status": rec["status"], "reason": rec.get("reason", ""),
                       "wall_seconds": rec.get("wall_seconds"), "limit_seconds": rec.get("limit_seconds"),
                       "headline": {} if rec["status"].startswith("skipped") else headline(name, rec)})
    s = {**common(), "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
         "all_ok_or_skipped": all(p["status"] == "ok" or p["status"].startswith("skipped") for p in phases),
         "total_wall_seconds": round(sum(p.get("wall_seconds") or 0 for p in phases), 1), "phases": phases}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(s, f, indent=2)
        f.write("\n")
    print(f"proof: {s['mode']} on {s['device']} (driver {s['driver']}), commit {s['commit']}")
    print(f"{'phase':<11} {'status':<20} {'wall s':>7} {'limit':>6}  note")
    for p in phases:
        note = " ".join(x for x in (p.get("reason") or "",
                                    json.dumps(p["headline"], separators=(",", ":")) if p.get("headline") else "") if x)
        print(f"{p['phase']:<11} {p['status']:<20} {p.get('wall_seconds') or 0:>7.1f} {p.get('limit_seconds') or 0:>6}  "
              f"{note[:160]}")
    print(f"total {s['total_wall_seconds']} s; summary: {os.path.join(out, 'summary.json')}")


def markdown(out):
    """The ratios against the issue's targets as Markdown rows, for bench/README.md (issue step 4)."""
    s = load(out, "summary")
    if s is None:
        print(f"proof markdown: no {out}/summary.json", file=sys.stderr)
        return 1
    heads = {p["phase"]: (p["status"], p.get("headline") or {}) for p in s["phases"]}
    rows = []

    def row(what, value, target, higher_is_better=True, unit=""):
        met = "" if value is None or target is None else (
            "yes" if (value >= target if higher_is_better else value <= target) else "no")
        fmt = (lambda v: "—" if v is None else (f"{v:.3g}{unit}" if isinstance(v, (int, float)) else str(v)))
        rows.append(f"| {what} | {fmt(value)} | {fmt(target)} | {met} |")

    for phase in ("memcheck", "racecheck"):
        st, h = heads[phase]
        row(f"{phase} errors ({st})", h.get("errors"), 0, higher_is_better=False)
    st, h = heads["parity"]
    row(f"fp32 parity: failing fixtures of {h.get('fixtures', 0)} ({st})", len(h.get("failed", [])) if h else None, 0,
        higher_is_better=False)
    row("fp32 logits NMSE against the CPU path, worst fixture", h.get("max_nmse_vs_cpu"), None)
    st, h = heads["accuracy"]
    row(f"bf16 logits NMSE against fp32, worst fixture ({st})", h.get("max_bf16_nmse"), 1e-3, higher_is_better=False)
    row(f"fp16 logits NMSE against fp32, worst fixture ({st})", h.get("max_fp16_nmse"), 1e-4, higher_is_better=False)
    st, h = heads["bandwidth"]
    row(f"copy-kernel bandwidth GB/s ({st}; data sheet {h.get('spec_hbm_gb_per_s')})", h.get("copy_kernel_gb_per_s"),
        None)
    st, h = heads["decode"]
    for shape, v in h.items():
        if isinstance(v, dict):
            row(f"decode {shape}: {v.get('decode_ms_per_token', 0):.3g} ms/token, fraction of copy bandwidth",
                v.get("decode_fraction_of_measured_bandwidth"), 0.8)
    st, h = heads["gemm"]
    row(f"projection GEMMs, worst fraction of cuBLASLt's best ({st})", h.get("worst_fraction_of_cublaslt_best"), 0.9)
    st, h = heads["attention"]
    for r in h.get("runs", []):
        row(f"prefill attention {r.get('tokens')} tokens: {r.get('tflops') or 0:.3g} TFLOP/s, fraction of bf16 peak",
            r.get("fraction_of_spec_bf16_peak"), h.get("target_fraction"))
    st, h = heads["norm_rope"]
    for k, v in h.items():
        if k != "target_fraction":
            row(f"{k}, fraction of copy bandwidth ({st})", v, 0.85)
    st, h = heads["e2e"]
    for k, v in h.items():
        if isinstance(v, dict):
            row(f"end to end {k}: prefill tokens/s", v.get("prefill_tokens_per_s"), None)
            row(f"end to end {k}: decode tokens/s", v.get("decode_tokens_per_s"), None)
    print(f"GPU: {s['device']} (driver {s['driver']}), commit {s['commit']}, {s['finished_utc']}\n")
    print("| figure | value | target | met |\n|---|---|---|---|")
    print("\n".join(rows))
    return 0


def check(out):
    s = load(out, "summary")
    if s is None:
        print(f"proof check: no {out}/summary.json", file=sys.stderr)
        return 1
    bad = [p for p in s["phases"] if not (p["status"] == "ok" or p["status"].startswith("skipped"))]
    if len(s["phases"]) != len(PHASES) or bad:
        for p in bad:
            print(f"proof check: {p['phase']}: {p['status']} ({p.get('reason', '')})", file=sys.stderr)
        return 1
    print(f"proof check: {len(PHASES)} phases, each ok or skipped")
    return 0


def main(argv):
    if len(argv) >= 9 and argv[1] == "phase":
        phase(*argv[2:9])
        return 0
    if len(argv) == 3 and argv[1] == "summary":
        summary(argv[2])
        return 0
    if len(argv) == 3 and argv[1] == "markdown":
        return markdown(argv[2])
    if len(argv) == 3 and argv[1] == "check":
        return check(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
