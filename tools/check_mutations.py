#!/usr/bin/env python3
"""Plants each mutation of issue 30 (item 0) in the library, rebuilds, runs the tests named for it, and puts
the file back: the evidence behind docs/testing.md's "Mutations the tests catch".

  python3 tools/check_mutations.py [--build CMD] [--tests BINARY] [--only NAME ...] [--list]

--build defaults to `cmake --build build --target nexus_tests`; --tests to build/tests/nexus_tests. Each
mutation names the existing tests that cover its code ("before") and the test added for it ("after"); a
mutation is caught when a test fails (Catch2's exit code is non-zero). Every file is restored, also on ^C."""
import argparse
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
F = "include/nexus/fusion/"
# test_byte_level.cpp's cases (its brute force included), without the [real] one.
BYTE_LEVEL_TESTS = ("byte-level distributions are*,byte-level log-likelihood*,byte-level distributions equal the brute-force*,"
                    "byte-level marginal*,byte-level input errors*")

# name, file, [(old, new, occurrences)], existing tests ("before"), the new test ("after")
MUTATIONS = [
    ("byte-level: a base ending inside a character is admitted", F + "bytes/vocabulary.hpp",
     [("  if (!boundary) return false;", "  if (!boundary) return true;", 1)],
     [BYTE_LEVEL_TESTS, "the byte-level teacher*"], ["[byte-ref]"]),
    ("byte-level: the look-ahead match ignores the last token", F + "bytes/vocabulary.hpp",
     [("std::equal(toks.begin(), toks.end(), ahead.begin())) return true;",
       "std::equal(toks.begin(), toks.end() - 1, ahead.begin())) return true;", 1)],
     [BYTE_LEVEL_TESTS, "the byte-level teacher*"], ["[byte-ref]"]),
    ("mixture: no w == 0 guard in the log-linear mixture", F + "mixtures/kinds/log_linear.hpp",
     [("return w == 0 ? 0.0 : w * std::log(p);", "return w * std::log(p);", 1)],
     ["[ensemble]", "[system]"], ["reference: three teachers mixed*"]),
    ("mixture: consulted weights not renormalised (no / sum)", F + "mixtures/mixture.hpp",
     [("out.push_back(sum > 0 ? w[t] / sum : w[t]);", "out.push_back(w[t]);", 1)],
     ["[system]"], ["reference: a 3-teacher system*"]),
    ("system: best_p = 0, the end of text never chosen", F + "system/generate.hpp",
     [("double best_p = d[end_of_text];", "double best_p = 0;", 1)],
     ["[system]"], ["reference: greedy generation*"]),
    ("router: prefix_bytes - 1 bytes counted", F + "system/router.hpp",
     [("std::min<std::size_t>(prompt.size(), std::size_t(prefix_bytes));",
       "std::min<std::size_t>(prompt.size(), std::size_t(prefix_bytes - 1));", 1)],
     ["[system]"], ["reference: the router*"]),
    ("cascade: mix(..., stage + 1) when choosing thresholds", F + "system/cascade.hpp",
     [("mix(d.dists[i], stage)", "mix(d.dists[i], stage + 1)", 2)],
     ["[system]"], ["reference: a 3-teacher cascade*"]),
    ("sha256: a wrong round constant", "include/nexus/io/sha256.hpp",
     [("0x428a2f98", "0x428a2f99", 1)],
     ["[bundle]", "[system]", "feature store*"], ["[sha256]"]),
    ("CCA: the weakest components kept", F + "maps/closed_form.hpp",
     [("  for (std::int64_t c = 0; c < k; ++c)\n    for (std::int64_t j = 0; j < dy; ++j) {",
       "  for (std::int64_t c = r - k; c < r; ++c)\n    for (std::int64_t j = 0; j < dy; ++j) {", 1)],
     ["CCA*", "OT map*"], ["NumPy: regularised CCA*"]),
    ("stitch: the unigram scored on the current token", F + "bridges/stitch.hpp",
     [("sum_u -= uni->logp[std::size_t(next[std::size_t(r)])];",
       "sum_u -= uni->logp[std::size_t(ids_b[row_b[std::size_t(r)]])];", 1)],
     ["stitch*"], ["reference: the stitch*"]),
    ("top-k taps: the runner-up skipped", "include/nexus/model/model.hpp",
     [("std::partial_sort(order.begin(), order.begin() + k, order.end(),",
       "std::partial_sort(order.begin(), order.begin() + std::min(k + 1, vocab), order.end(),", 1),
      ("= order[std::size_t(i)];", "= order[std::size_t(i + (i > 0 && k < vocab))];", 1),
      ("= row[order[std::size_t(i)]];", "= row[order[std::size_t(i + (i > 0 && k < vocab))]];", 1)],
     ["taps*", "feature store*"], ["reference: the top-k taps*"]),
    ("extract: bf16 by truncation", F + "features/extract.hpp",
     [("return std::uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);", "return std::uint16_t(u >> 16);", 1)],
     ["feature store*"], ["reference: f32 -> bf16*"]),
    ("bridges: LayerNorm eps 1e-3 in forward and backward", F + "bridges/parameters.hpp",
     [("inline constexpr double bridge_norm_eps = 1e-5;", "inline constexpr double bridge_norm_eps = 1e-3;", 1)],
     ["[bridges]", "norm backward*"], ["NumPy: the MLP bridge*"]),
    ("bridges: LoRA scale rank / alpha in forward and backward", F + "bridges/kinds/lora.hpp",
     [("const S scale = S(d.alpha / double(d.rank));", "const S scale = S(double(d.rank) / d.alpha);", 2)],
     ["[bridges]"], ["NumPy: the LoRA bridge*"]),
]


def run_tests(binary, spec):
    r = subprocess.run([binary, spec], cwd=ROOT, capture_output=True, text=True)
    if "No test cases matched" in r.stdout + r.stderr:
        return "no match"
    return "pass" if r.returncode == 0 else "FAIL"


def plant(selected):
    """Applies the edits of `selected`; returns {path: original text}."""
    originals = {}
    for name, rel, edits, before, after in selected:
        path = ROOT / rel
        originals.setdefault(path, path.read_text())
        text = path.read_text()
        for old, new, count in edits:
            assert text.count(old) == count, f"{rel}: expected {count} of {old!r}, found {text.count(old)}"
            text = text.replace(old, new)
        path.write_text(text)
    return originals


def together(a):
    selected = [m for m in MUTATIONS if not a.only or any(o in m[0] for o in a.only)]
    originals = {}
    try:
        originals = plant(selected)
        b = subprocess.run(a.build, shell=True, cwd=ROOT, capture_output=True, text=True)
        if b.returncode != 0:
            print(b.stdout[-3000:], b.stderr[-3000:], file=sys.stderr)
            return 1
        for name, rel, edits, before, after in selected:
            was = ", ".join(f"{s}: {run_tests(a.tests, s)}" for s in before)
            now = ", ".join(f"{s}: {run_tests(a.tests, s)}" for s in after)
            print(f"{name}\n  before: {was}\n  after:  {now}", flush=True)
    finally:
        for path, text in originals.items():
            path.write_text(text)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="cmake --build build --target nexus_tests")
    ap.add_argument("--tests", default=str(ROOT / "build/tests/nexus_tests"))
    ap.add_argument("--only", nargs="*", default=None, help="substrings of mutation names")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--together", action="store_true",
                    help="plant the selected mutations at once (mutations of different code, one build): each new "
                         "test must fail, the old tests show whether any of them was caught before")
    a = ap.parse_args()
    if a.together:
        return together(a)
    rows = []
    for name, rel, edits, before, after in MUTATIONS:
        if a.only and not any(o in name for o in a.only):
            continue
        if a.list:
            print(name)
            continue
        path = ROOT / rel
        original = path.read_text()
        text = original
        for old, new, count in edits:
            assert text.count(old) == count, f"{rel}: expected {count} of {old!r}, found {text.count(old)}"
            text = text.replace(old, new)
        try:
            path.write_text(text)
            b = subprocess.run(a.build, shell=True, cwd=ROOT, capture_output=True, text=True)
            if b.returncode != 0:
                rows.append((name, "build failed", "build failed"))
                print(b.stdout[-2000:], b.stderr[-2000:], file=sys.stderr)
                continue
            was = {s: run_tests(a.tests, s) for s in before}
            now = {s: run_tests(a.tests, s) for s in after}
            rows.append((name, ", ".join(f"{s}: {v}" for s, v in was.items()),
                         ", ".join(f"{s}: {v}" for s, v in now.items())))
            print(f"{name}\n  before: {rows[-1][1]}\n  after:  {rows[-1][2]}", flush=True)
        finally:
            path.write_text(original)
    if a.list:
        return 0
    # Unmutated, every new test passes.
    subprocess.run(a.build, shell=True, cwd=ROOT, check=True, capture_output=True)
    clean = {s: run_tests(a.tests, s) for m in MUTATIONS for s in m[4]}
    print("unmutated:", ", ".join(f"{s}: {v}" for s, v in clean.items()))
    return 0 if all(v == "pass" for v in clean.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
