"""Serving throughput: `nexus serve` against llama-cpp-python's OpenAI-compatible server (llama.cpp underneath) on
the same GGUF file and the same thread count, with 1, 4 and 16 concurrent clients. Run through bench/serve/run.sh,
which sets up the environment (bench/serve/requirements.txt) and fetches the models; it builds nothing.

For each model and server: start the server (nexus: `nexus serve MODEL --port 0 ...`, its port read from the first
line of its stdout; llama-cpp-python: `python -m llama_cpp.server ...` on a free port), wait until it answers,
warm it up with one request, then for each client count C run C threads, each with its own official `openai`
client, taking requests from one shared list (chat completions, temperature 0, max_tokens 64, a fixed rotation of
varied prompts: every server gets the same requests) until the total for C is done (default max(16, 2*C)).
Measured: wall seconds from the first request sent to the last answer, completion tokens from each response's
`usage.completion_tokens`, tokens/s = completion tokens / wall seconds, requests/s, request latency (mean, p50,
p95). Then the server is stopped (SIGTERM, SIGKILL after 10 s; always, in a finally).

Both servers generate one request at a time (no continuous batching): the JSON says so per server
("batching"), so the figures with 4 and 16 clients measure queueing and the HTTP layer, not batched decoding.

Writes bench/results/serve-throughput.json (raw figures, the ratio nexus / llama-cpp-python per model and client
count, the command, date, machine, OS, commit, versions, model files with sha256) and
bench/results/serve-throughput.png, and prints a summary table.
"""
import argparse
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import queue
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

MODELS = {  # name: file in the model cache (tools/fetch_models.sh)
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
}
# The route each model is asked through. gemma-3-270m-q4_k_m.gguf carries no chat template: `nexus serve` answers
# chat on it with a 400 ("use /v1/completions") and llama-cpp-python falls back to a generic chat format whose
# answer is an immediate end token, so both get the same plain prompts on /v1/completions instead.
ENDPOINTS = {"smollm2": "chat", "gemma3": "completions"}
SERVERS = ["nexus", "llama-cpp-python"]
BATCHING = {
    "nexus": "none: --parallel requests are accepted at once and generate one at a time, in turn (docs/serve.md)",
    "llama-cpp-python": "none: one Llama instance behind a lock; requests are served one at a time "
                        "(llama_cpp.server, non-streamed)",
}
START_TIMEOUT_S = 120
# The warm-up request's prompt: none of PROMPTS, so that no measured request finds its whole prompt already in a
# server's cache (llama-cpp-python reuses the longest common prefix of the previous request's tokens).
WARMUP_PROMPT = "Tell me about the history of the bicycle."

# The requests, in this order for every server and client count: request i uses PROMPTS[i % len(PROMPTS)].
PROMPTS = [
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a refrigerator keeps food cold, step by step.",
    "What are the main differences between a list and a tuple in Python?",
    "Describe the water cycle to a ten-year-old.",
    "Give me five ideas for a rainy Sunday afternoon at home.",
    "Why is the sky blue? Answer in a few sentences.",
    "Write a polite email asking a colleague to review a document by Friday.",
    "Summarise the causes of the French Revolution.",
    "How do vaccines train the immune system?",
    "Write a haiku about autumn leaves, then explain its imagery.",
    "What should I pack for a three-day hiking trip in the mountains?",
    "Explain recursion with a simple example in Python.",
    "Compare the advantages of trains and planes for travelling across Europe.",
    "Describe how bread rises when it is baked.",
    "List some tips for learning a new language as an adult.",
    "What is photosynthesis and why does it matter for life on Earth?",
]


def log(msg):
    print(f"[serve-bench] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


def peak_rss_bytes(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class ServerError(RuntimeError):
    pass


class Server:
    """One server process: started in __enter__, stopped in __exit__ whatever happened."""

    def __init__(self, kind, model_path, threads, nexus, python, logdir):
        self.kind, self.model_path, self.threads = kind, model_path, threads
        self.nexus, self.python = nexus, python
        self.log_path = logdir / f"{kind}-{model_path.stem}.log"
        self.proc, self.port, self.model_id, self.command = None, None, None, None

    def _cmd(self):
        if self.kind == "nexus":
            return [str(self.nexus), "serve", str(self.model_path), "--host", "127.0.0.1", "--port", "0",
                    "--threads", str(self.threads), "--parallel", "16", "--context", "2048"]
        self.port = free_port()
        return [str(self.python), "-m", "llama_cpp.server", "--model", str(self.model_path),
                "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads), "--n_ctx", "2048",
                "--host", "127.0.0.1", "--port", str(self.port)]

    def _tail(self):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return ""

    def __enter__(self):
        cmd = self._cmd()
        self.command = shlex.join(cmd)
        log(f"starting {self.kind}: {self.command}")
        self.log_file = open(self.log_path, "w")
        started = time.time()
        try:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if self.kind == "nexus" else self.log_file,
                                         stderr=self.log_file, stdin=subprocess.DEVNULL, text=True)
        except OSError as e:
            raise ServerError(f"{self.kind}: cannot start {cmd[0]}: {e}") from e
        try:
            if self.kind == "nexus":
                self._read_port(started)
            self._wait_ready(started)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.startup_s = time.time() - started
        log(f"{self.kind} ready on port {self.port} as '{self.model_id}' after {self.startup_s:.1f} s")
        return self

    def _read_port(self, started):
        lines = queue.Queue()

        def reader():  # keeps draining stdout so that the server never blocks on a full pipe
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)
        threading.Thread(target=reader, daemon=True).start()
        while True:
            left = START_TIMEOUT_S - (time.time() - started)
            if left <= 0:
                raise ServerError(f"nexus: no port printed on stdout within {START_TIMEOUT_S} s "
                                  f"(log {self.log_path}):\n{self._tail()}")
            try:
                line = lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=5)
                raise ServerError(f"nexus exited with status {self.proc.returncode} before printing its port "
                                  f"(log {self.log_path}):\n{self._tail()}")
            self.log_file.write(line)
            self.log_file.flush()
            m = re.search(r"http://[^:\s]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                return

    def _wait_ready(self, started):
        base = f"http://127.0.0.1:{self.port}"
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.kind} exited with status {self.proc.returncode} while starting "
                                  f"(log {self.log_path}):\n{self._tail()}")
            if time.time() - started > START_TIMEOUT_S:
                raise ServerError(f"{self.kind}: not answering on {base} within {START_TIMEOUT_S} s "
                                  f"(log {self.log_path}):\n{self._tail()}")
            try:
                if self.kind == "nexus":
                    http_json(base + "/health")
                models = http_json(base + "/v1/models")
                self.model_id = models["data"][0]["id"]
                return
            except (OSError, urllib.error.URLError, ValueError, KeyError, IndexError):
                time.sleep(0.5)

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.peak_rss = peak_rss_bytes(self.proc.pid)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log(f"{self.kind} did not stop within 10 s of SIGTERM: killing it")
                self.proc.kill()
                self.proc.wait()
            log(f"{self.kind} stopped (status {self.proc.returncode})")
        self.log_file.close()
        return False


def cpu_jiffies():
    """The machine's CPU time so far, all cores together (/proc/stat's first line), in clock ticks."""
    names = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]
    try:
        return dict(zip(names, map(int, Path("/proc/stat").read_text().splitlines()[0].split()[1:9])))
    except (OSError, ValueError, IndexError):
        return None


def cpu_share(before, after):
    """How the machine's CPU time went during a run: busy (anyone's user and system time, this run's servers and
    clients and anything else), idle (cores with nothing to run) and steal (taken by the hypervisor)."""
    if not before or not after:
        return None
    d = {k: after[k] - before[k] for k in before}
    total = sum(d.values()) or 1
    busy = d["user"] + d["nice"] + d["system"] + d["irq"] + d["softirq"]
    return {"busy": round(busy / total, 3), "idle": round((d["idle"] + d["iowait"]) / total, 3),
            "steal": round(d["steal"] / total, 3)}


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def one_request(client, model_id, endpoint, i, max_tokens, prompt=None):
    prompt = prompt or PROMPTS[i % len(PROMPTS)]
    t0 = time.perf_counter()
    if endpoint == "chat":
        r = client.chat.completions.create(model=model_id, temperature=0, max_tokens=max_tokens,
                                           messages=[{"role": "user", "content": prompt}])
        text = r.choices[0].message.content
    else:
        r = client.completions.create(model=model_id, temperature=0, max_tokens=max_tokens, prompt=prompt)
        text = r.choices[0].text
    latency = time.perf_counter() - t0
    return {"i": i, "prompt": i % len(PROMPTS), "latency_s": latency,
            "completion_tokens": r.usage.completion_tokens, "prompt_tokens": r.usage.prompt_tokens,
            "finish_reason": r.choices[0].finish_reason, "text": text}


def run_clients(port, model_id, endpoint, clients, total, max_tokens):
    from openai import OpenAI
    base = f"http://127.0.0.1:{port}/v1"
    lock = threading.Lock()
    next_i = [0]
    results, errors = [], []
    start = threading.Barrier(clients + 1)

    def worker():
        client = OpenAI(base_url=base, api_key="unused", max_retries=0, timeout=600)
        start.wait()
        while True:
            with lock:
                if next_i[0] >= total or errors:
                    break
                i = next_i[0]
                next_i[0] += 1
            try:
                r = one_request(client, model_id, endpoint, i, max_tokens)
            except Exception as e:  # noqa: BLE001 - reported, then the run fails
                with lock:
                    errors.append(f"request {i}: {type(e).__name__}: {e}")
                break
            with lock:
                results.append(r)
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    j0 = cpu_jiffies()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    cpu = cpu_share(j0, cpu_jiffies())
    if errors:
        raise ServerError(f"{len(errors)} request(s) failed with {clients} clients: {errors[0]}")
    results.sort(key=lambda r: r["i"])
    lat = [r["latency_s"] for r in results]
    tokens = sum(r["completion_tokens"] for r in results)
    return {
        "clients": clients, "requests": len(results), "wall_s": round(wall, 4),
        "completion_tokens": tokens, "prompt_tokens": sum(r["prompt_tokens"] for r in results),
        "tokens_per_s": round(tokens / wall, 3) if tokens else None, "requests_per_s": round(len(results) / wall, 4),
        "latency_mean_s": round(statistics.fmean(lat), 4), "latency_p50_s": round(percentile(lat, 50), 4),
        "latency_p95_s": round(percentile(lat, 95), 4),
        "finish_reasons": {k: sum(r["finish_reason"] == k for r in results)
                           for k in sorted({r["finish_reason"] for r in results})},
        "cpu_share": cpu, "loadavg_after": Path("/proc/loadavg").read_text().strip(),
        "per_request": [{k: (round(v, 4) if k == "latency_s" else v) for k, v in r.items() if k != "text"}
                        for r in results],
        "_texts": {r["prompt"]: r["text"] for r in results},
    }


def bench_server(kind, model_path, endpoint, a, logdir):
    entry = {"batching": BATCHING[kind], "runs": []}
    texts = {}
    with Server(kind, model_path, a.threads, a.nexus, sys.executable, logdir) as srv:
        entry.update(command=srv.command, model_id=srv.model_id, startup_s=round(srv.startup_s, 2))
        from openai import OpenAI
        client = OpenAI(base_url=f"http://127.0.0.1:{srv.port}/v1", api_key="unused", max_retries=0, timeout=600)
        w = one_request(client, srv.model_id, endpoint, -1, a.max_tokens, WARMUP_PROMPT)
        client.close()
        entry["warmup"] = {"latency_s": round(w["latency_s"], 4), "completion_tokens": w["completion_tokens"]}
        for c in a.clients:
            total = a.requests or max(a.min_requests, a.per_client * c)
            run = run_clients(srv.port, srv.model_id, endpoint, c, total, a.max_tokens)
            for p, t in run.pop("_texts").items():
                texts.setdefault(p, set()).add(t)
            log(f"{model_path.name} {kind} {c:2d} clients: {run['requests']} requests, "
                f"{run['completion_tokens']} tokens in {run['wall_s']:.2f} s = {run['tokens_per_s'] or 0:.1f} tok/s, "
                f"latency p50 {run['latency_p50_s']:.2f} s p95 {run['latency_p95_s']:.2f} s; CPU "
                f"{', '.join(f'{k} {v:.0%}' for k, v in (run['cpu_share'] or {}).items())}")
            entry["runs"].append(run)
    entry["peak_rss_bytes"] = getattr(srv, "peak_rss", None)
    entry["same_text_at_every_client_count"] = all(len(v) == 1 for v in texts.values())
    entry["texts"] = {str(p): sorted(v)[0] for p, v in sorted(texts.items())}
    return entry


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def machine_info():
    info = {"nproc": os.cpu_count(), "loadavg_start": Path("/proc/loadavg").read_text().strip()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        info["cpu_model"] = m.group(1).strip() if m else None
    except OSError:
        info["cpu_model"] = None
    try:
        info["nproc"] = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout)
    except (OSError, ValueError):
        pass
    try:
        info["memory_bytes"] = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return info


def os_info():
    out = {"platform": platform.platform(), "python": platform.python_version()}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                out["os"] = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return out


def versions(nexus):
    out = {}
    try:
        out["nexus"] = subprocess.run([str(nexus), "--version"], capture_output=True, text=True,
                                      timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        out["nexus"] = None
    for pkg in ["llama-cpp-python", "openai", "uvicorn", "fastapi", "sse-starlette", "pydantic", "httpx2",
                "matplotlib", "numpy"]:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    out["llama.cpp"] = llama_cpp_version()
    return out


def llama_cpp_version():
    """The llama.cpp vendored in llama-cpp-python: ggml's version and the llama.cpp commit compiled into
    libggml-base (ggml_version, ggml_commit; "-dirty" is how the sdist's checkout looked to git at build time), and
    its system info line (the CPU features it was compiled for)."""
    code = ("import ctypes, pathlib, llama_cpp\n"
            "lib = ctypes.CDLL(str(pathlib.Path(llama_cpp.__file__).parent / 'lib' / 'libggml-base.so'))\n"
            "for f in ('ggml_version', 'ggml_commit'):\n"
            "    fn = getattr(lib, f); fn.restype = ctypes.c_char_p; print(fn().decode())\n"
            "print(llama_cpp.llama_print_system_info().decode().strip())\n")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
        lines = out.splitlines()
        return {"ggml_version": lines[0], "commit": lines[1], "system_info": lines[2] if len(lines) > 2 else None}
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return None


def git_info():
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.strip()
    return {"commit": git("rev-parse", "HEAD") or "unknown",
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def summarise(result):
    lines = []
    hdr = f"{'model':<10} {'clients':>7} {'nexus tok/s':>12} {'llama-cpp-py tok/s':>19} {'ratio':>7} " \
          f"{'nexus p50/p95 s':>16} {'llama p50/p95 s':>16}"
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for name, m in result["models"].items():
        runs = {s: {r["clients"]: r for r in m["servers"].get(s, {}).get("runs", [])} for s in SERVERS}
        for c in result["settings"]["clients"]:
            n, l_ = runs["nexus"].get(c), runs["llama-cpp-python"].get(c)
            ratio = m.get("ratio_tokens_per_s", {}).get(str(c))

            def fmt(r, key="tokens_per_s"):
                return f"{r[key]:.1f}" if r and r[key] is not None else "-"

            def lat(r):
                return f"{r['latency_p50_s']:.2f}/{r['latency_p95_s']:.2f}" if r else "-"
            lines.append(f"{name:<10} {c:>7} {fmt(n):>12} {fmt(l_):>19} "
                         f"{(f'{ratio:.2f}x' if ratio else '-'):>7} {lat(n):>16} {lat(l_):>16}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nexus", type=Path, default=REPO / "build" / "nexus", help="the nexus binary")
    ap.add_argument("--models-dir", type=Path,
                    default=Path(os.environ.get("NEXUS_MODELS", Path.home() / ".cache" / "nexus" / "models")))
    ap.add_argument("--models", default="smollm2,gemma3", help=f"comma-separated, of {','.join(MODELS)}")
    ap.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated, of {','.join(SERVERS)}")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of each server (default 2)")
    ap.add_argument("--clients", default="1,4,16", help="concurrent client counts (default 1,4,16)")
    ap.add_argument("--requests", type=int, default=0,
                    help="total requests per client count (default: max(--min-requests, --per-client * C))")
    ap.add_argument("--min-requests", type=int, default=16)
    ap.add_argument("--per-client", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results",
                    help="folder for serve-throughput.json and .png")
    a = ap.parse_args()
    a.clients = [int(c) for c in a.clients.split(",")]
    models = a.models.split(",")
    servers = a.servers.split(",")
    for m in models:
        if m not in MODELS:
            ap.error(f"unknown model '{m}' (known: {', '.join(MODELS)})")
    for s in servers:
        if s not in SERVERS:
            ap.error(f"unknown server '{s}' (known: {', '.join(SERVERS)})")
    if "nexus" in servers and not os.access(a.nexus, os.X_OK):
        sys.exit(f"serve-bench: no nexus binary at {a.nexus} (build the nexus_cli target)")

    # SIGTERM and SIGHUP end the run as Ctrl-C does: through the finally blocks that stop the servers.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    started = time.time()
    result = {
        "benchmark": "serve-throughput",
        "command": os.environ.get("NEXUS_SERVE_BENCH_COMMAND") or shlex.join([sys.executable, *sys.argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(), "os": os_info(), **git_info(), "versions": versions(a.nexus),
        "settings": {"threads": a.threads, "clients": a.clients, "max_tokens": a.max_tokens, "temperature": 0,
                     "requests": {str(c): a.requests or max(a.min_requests, a.per_client * c) for c in a.clients},
                     "endpoint": {m: "/v1/chat/completions" if e == "chat" else "/v1/completions"
                                  for m, e in ENDPOINTS.items()},
                     "stream": False, "client": "official openai Python client, "
                     "one per thread", "n_ctx": 2048, "prompts": PROMPTS,
                     "warmup_prompt": WARMUP_PROMPT,
                     "tokens_per_s": "sum of usage.completion_tokens / wall seconds from the first request sent "
                                     "to the last answer",
                     "cpu_share": "fractions of the machine's CPU time (all cores, /proc/stat) during each run: busy "
                                  "(everything running, not only the server), idle, steal (hypervisor)"},
        "models": {},
    }
    a.out.mkdir(parents=True, exist_ok=True)
    logdir = Path(os.environ.get("TMPDIR", "/tmp")) / "nexus-serve-bench-logs"
    logdir.mkdir(parents=True, exist_ok=True)
    failed = []
    for k, name in enumerate(models):
        path = a.models_dir / MODELS[name]
        if not path.is_file():
            sys.exit(f"serve-bench: no model file {path} (run tools/fetch_models.sh)")
        endpoint = ENDPOINTS[name]
        entry = {"file": path.name, "bytes": path.stat().st_size, "sha256": sha256(path),
                 "endpoint": "/v1/chat/completions" if endpoint == "chat" else "/v1/completions", "servers": {}}
        # Alternate which server goes first from model to model, so that neither always runs on a warmer machine.
        order = servers if k % 2 == 0 else servers[::-1]
        entry["order"] = order
        for kind in order:
            try:
                entry["servers"][kind] = bench_server(kind, path, endpoint, a, logdir)
            except Exception as e:  # noqa: BLE001 - a failed server is reported and the others still run
                msg = str(e) if isinstance(e, ServerError) else f"{type(e).__name__}: {e}"
                log(f"ERROR {name} {kind}: {msg}")
                entry["servers"][kind] = {"batching": BATCHING[kind], "error": msg}
                failed.append(f"{name}/{kind}")
        sv = entry["servers"]
        if all(s in sv and "runs" in sv[s] for s in SERVERS):
            n = {r["clients"]: r for r in sv["nexus"]["runs"]}
            l_ = {r["clients"]: r for r in sv["llama-cpp-python"]["runs"]}
            entry["ratio_tokens_per_s"] = {str(c): round(n[c]["tokens_per_s"] / l_[c]["tokens_per_s"], 3)
                                           for c in a.clients if c in n and c in l_
                                           and n[c]["tokens_per_s"] and l_[c]["tokens_per_s"]}
            entry["ratio_requests_per_s"] = {str(c): round(n[c]["requests_per_s"] / l_[c]["requests_per_s"], 3)
                                             for c in a.clients if c in n and c in l_}
            tn, tl = sv["nexus"]["texts"], sv["llama-cpp-python"]["texts"]
            entry["same_text_both_servers"] = f"{sum(tn[p] == tl.get(p) for p in tn)}/{len(tn)} prompts"
        result["models"][name] = entry

    result["elapsed_s"] = round(time.time() - started, 1)
    result["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().strip()
    json_path = a.out / "serve-throughput.json"
    json_path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    png_path = a.out / "serve-throughput.png"
    try:
        draw(result, png_path)
    except ImportError as e:
        log(f"no chart ({e})")
        png_path = None
    print(summarise(result))
    rel = (lambda p: p.relative_to(REPO) if p.is_relative_to(REPO) else p)
    print(f"\nwrote {rel(json_path)}{' and ' + str(rel(png_path)) if png_path else ''} "
          f"({result['elapsed_s'] / 60:.1f} min; load average {result['machine']['loadavg_start'].split()[0]} at "
          f"the start, {result['machine']['loadavg_end'].split()[0]} at the end; server logs in {logdir})")
    if failed:
        sys.exit(f"serve-bench: failed: {', '.join(failed)}")


def draw(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colors = {"nexus": "#1f77b4", "llama-cpp-python": "#ff7f0e"}
    clients = result["settings"]["clients"]
    models = list(result["models"].items())
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.8), squeeze=False)
    for ax, (name, m) in zip(axes[0], models):
        width = 0.38
        tops = [0.0] * len(clients)
        for j, s in enumerate(SERVERS):
            runs = {r["clients"]: r for r in m["servers"].get(s, {}).get("runs", [])}
            ys = [(runs[c]["tokens_per_s"] or 0) if c in runs else 0 for c in clients]
            xs = [i + (j - 0.5) * width for i in range(len(clients))]
            rects = ax.bar(xs, ys, width, label=s, color=colors[s])
            for i, (r, y) in enumerate(zip(rects, ys)):
                tops[i] = max(tops[i], y)
                if y:
                    ax.annotate(f"{y:.1f}", (r.get_x() + r.get_width() / 2, y), ha="center", va="bottom",
                                fontsize=8, xytext=(0, 1), textcoords="offset points")
        for i, c in enumerate(clients):
            ratio = m.get("ratio_tokens_per_s", {}).get(str(c))
            if ratio:
                ax.annotate(f"{ratio:.2f}×", (i, tops[i]), ha="center", va="bottom", fontsize=10,
                            fontweight="bold", xytext=(0, 14), textcoords="offset points")
        ax.set_xticks(range(len(clients)), [f"{c} client{'s' if c > 1 else ''}" for c in clients])
        ax.set_ylabel("completion tokens/s (higher is better)")
        ax.set_title(f"{m['file']} ({m['endpoint']})\nratio nexus / llama-cpp-python in bold", fontsize=10)
        ax.margins(y=0.22)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    mi = result["machine"]
    s = result["settings"]
    fig.suptitle(f"Serving throughput, {result['date'][:10]}, commit {result['commit'][:10]}"
                 f"{' (dirty)' if result.get('dirty') else ''}; {mi.get('cpu_model', '?')}, {mi.get('nproc')} cores, "
                 f"{s['threads']} threads per server; max_tokens {s['max_tokens']}, temperature 0; "
                 f"both servers generate one request at a time", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
