#!/usr/bin/env python3
"""Encode throughput of the `tokenizers` library on one thread: the reference for bench/tokenizer_bench.cpp.

    python bench/tokenizer_bench.py TOKENIZER TEXT_FILE [REPEATS]

TOKENIZER is a folder holding tokenizer.json, or the tokenizer.json itself. The loop is the C++ one: the file is
split into lines on "\\n" (the newline is not part of the line, a final empty line is not a line), every line is
encoded on its own with add_special_tokens=False, and the best of REPEATS (default 3) passes is reported.
bytes is the UTF-8 size of the lines without their newlines, tokens the ids of one pass.

Prints one JSON object: {"tokens", "bytes", "seconds", "mb_per_s"} for the per-line loop (compare these with
the C++ output), plus "encode_batch": the same lines through Tokenizer.encode_batch, timed separately. Both run
on one thread: RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false are set before tokenizers is imported
(encode_batch then encodes the lines serially). mb_per_s is 10^6 bytes per second.
"""

import os

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402


def read_lines(path):
    data = Path(path).read_bytes().decode("utf-8")
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def best_of(repeats, fn):
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main():
    if len(sys.argv) < 3:
        print("usage: tokenizer_bench.py TOKENIZER TEXT_FILE [REPEATS]", file=sys.stderr)
        return 2
    path = Path(sys.argv[1])
    if path.is_dir():
        path = path / "tokenizer.json"
    tok = Tokenizer.from_file(str(path))
    lines = read_lines(sys.argv[2])
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    n_bytes = sum(len(line.encode("utf-8")) for line in lines)

    def per_line():
        n = 0
        for line in lines:
            n += len(tok.encode(line, add_special_tokens=False).ids)
        return n

    def batch():
        return sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False))

    tok.encode_batch(lines[:64], add_special_tokens=False)  # warm-up (the BPE word cache fills as in a pass)
    seconds, n_tokens = best_of(repeats, per_line)
    batch_seconds, batch_tokens = best_of(repeats, batch)
    assert batch_tokens == n_tokens, (batch_tokens, n_tokens)
    print(json.dumps({
        "tokens": n_tokens, "bytes": n_bytes, "seconds": round(seconds, 6),
        "mb_per_s": round(n_bytes / seconds / 1e6, 3) if seconds > 0 else None,
        "encode_batch": {"tokens": batch_tokens, "seconds": round(batch_seconds, 6),
                         "mb_per_s": round(n_bytes / batch_seconds / 1e6, 3) if batch_seconds > 0 else None},
        "lines": len(lines), "repeats": repeats, "threads": 1, "tokenizer": str(path),
        "tokenizers": tokenizers.__version__, "python": platform.python_version()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
