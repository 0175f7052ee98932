"""`nexus serve` driven by the official OpenAI Python client and by curl (run by tools/test.sh).

    python tests/serve/test_openai_api.py NEXUS_BINARY

Starts the server on a free port with a tiny fixture model (given a chat template) and with a tiny
bundle of two GGUF fixtures, then checks: the models list, completions, chat completions, streamed
chat equal to the same request unstreamed, log-probabilities (streamed ones equal to unstreamed), stop strings, 8 concurrent streams equal to the same
requests made one at a time, a wrong API key (401), a malformed body (400), an oversized body (413),
a prompt beyond the context (400), an unknown model (404), an unknown route (404), each a JSON
error, and the server still healthy after all of them.
"""
import concurrent.futures
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import openai

REPO = Path(__file__).resolve().parents[2]
NEXUS = sys.argv[1] if len(sys.argv) > 1 else str(REPO / "build" / "nexus")
KEY = "test-key"
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise AssertionError(what)
    checks += 1


def start(*args):
    p = subprocess.Popen([NEXUS, "serve", *args, "--port", "0", "--threads", "1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if " on http://" not in line:
        p.kill()
        raise AssertionError(f"server did not start: {line!r} {p.stderr.read()}")
    return p, line.split(" on ")[1].split(" ")[0]


def raw(url, body, headers=None, method="POST"):
    """(status, parsed JSON) of a request made without the client."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def error_of(status_and_body, status):
    s, b = status_and_body
    check(s == status, f"status {s}, expected {status}: {b}")
    check("error" in b and isinstance(b["error"].get("message"), str), f"not a JSON error: {b}")
    return b["error"]


def model_server(tmp):
    model = tmp / "tiny-chat"
    shutil.copytree(REPO / "tests/data/models/llama", model)
    shutil.copy(REPO / "tests/data/chat_templates/chatml.jinja", model / "chat_template.jinja")
    p, base = start(str(model), "--api-key", KEY, "--parallel", "8", "--context", "96", "--max-body-bytes", "8192")
    try:
        client = openai.OpenAI(base_url=base + "/v1", api_key=KEY, max_retries=0)
        check([m.id for m in client.models.list().data] == ["tiny-chat"], "models list")

        c = client.completions.create(model="tiny-chat", prompt="Hello", max_tokens=12, temperature=0)
        text = c.choices[0].text
        check(isinstance(text, str) and c.usage.completion_tokens <= 12, f"completion {c}")
        again = client.completions.create(model="tiny-chat", prompt="Hello", max_tokens=12, temperature=0)
        check(again.choices[0].text == text, "greedy completions repeat")

        # Log-probabilities (greedy): the chosen token is the most likely one, probabilities at most 1, the
        # tokens spell the text, and the alternatives are in decreasing order.
        lp = client.completions.create(model="tiny-chat", prompt="Hello", max_tokens=12, temperature=0,
                                       logprobs=3).choices[0].logprobs
        check(len(lp.tokens) == c.usage.completion_tokens == len(lp.token_logprobs) == len(lp.top_logprobs),
              f"logprobs per token {lp}")
        for v, top in zip(lp.token_logprobs, lp.top_logprobs):
            values = list(top.values())
            check(len(top) <= 3 and v <= 1e-9 and abs(v - max(values)) < 1e-6, f"chosen = most likely {v} {top}")
            check(sum(2.718281828459045 ** x for x in values) <= 1 + 1e-6, f"probabilities {top}")
            check(values == sorted(values, reverse=True), f"alternatives in order {top}")
        check(lp.text_offset[0] == 0, "text offsets")
        check(lp.text_offset == sorted(lp.text_offset) and all(o <= len(text.encode()) for o in lp.text_offset),
              f"text offsets inside the text (a special token adds nothing) {lp.tokens} {lp.text_offset} {text!r}")
        msgs = [{"role": "user", "content": "Hi there"}]
        lpc = client.chat.completions.create(model="tiny-chat", messages=msgs, max_tokens=10, temperature=0,
                                             logprobs=True, top_logprobs=2).choices[0]
        spelt = b"".join(bytes(t.bytes) for t in lpc.logprobs.content)
        check(lpc.message.content.encode() in spelt or spelt.startswith(lpc.message.content.encode()),
              f"chat logprobs spell the content {lpc}")
        check(all(len(t.top_logprobs) <= 2 and t.logprob <= 1e-9 for t in lpc.logprobs.content), "chat top")
        # Streamed, the chunks' log-probabilities joined are the unstreamed response's, token for token.
        got = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        for ch in client.completions.create(model="tiny-chat", prompt="Hello", max_tokens=12, temperature=0,
                                            logprobs=3, stream=True):
            if ch.choices and ch.choices[0].logprobs:
                for key in got:
                    got[key] += getattr(ch.choices[0].logprobs, key)
        check(got == {key: getattr(lp, key) for key in got}, f"streamed logprobs {got} != {lp}")
        content = []
        for ch in client.chat.completions.create(model="tiny-chat", messages=msgs, max_tokens=10, temperature=0,
                                                 logprobs=True, top_logprobs=2, stream=True):
            if ch.choices and ch.choices[0].logprobs:
                content += ch.choices[0].logprobs.content
        check([(t.token, t.logprob, t.bytes, [(a.token, a.logprob) for a in t.top_logprobs]) for t in content]
              == [(t.token, t.logprob, t.bytes, [(a.token, a.logprob) for a in t.top_logprobs])
                  for t in lpc.logprobs.content] and content, f"streamed chat logprobs {content}")
        check(error_of(raw(base + "/v1/completions", json.dumps({"model": "tiny-chat", "prompt": "Hi",
                                                                 "logprobs": 9}).encode(),
                                          {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"}),
                       400)["param"]
              == "logprobs", "logprobs out of range")

        chat = client.chat.completions.create(model="tiny-chat", messages=msgs, max_tokens=10, temperature=0)
        content = chat.choices[0].message.content
        check(chat.choices[0].message.role == "assistant" and isinstance(content, str), f"chat {chat}")
        streamed = "".join(ch.choices[0].delta.content or "" for ch in client.chat.completions.create(
            model="tiny-chat", messages=msgs, max_tokens=10, temperature=0, stream=True) if ch.choices)
        check(streamed == content, f"streamed chat {streamed!r} != {content!r}")

        if len(text) >= 4:  # a stop string the text reaches: the text ends before it
            stop = text[2:4]
            s = client.completions.create(model="tiny-chat", prompt="Hello", max_tokens=12, temperature=0, stop=[stop])
            check(s.choices[0].text == text[:text.find(stop)] and s.choices[0].finish_reason == "stop",
                  f"stop {stop!r}: {s.choices[0].text!r} from {text!r}")

        prompts = [f"Story {i}:" for i in range(8)]
        alone = [client.completions.create(model="tiny-chat", prompt=q, max_tokens=10, temperature=0).choices[0].text
                 for q in prompts]

        def stream(q):
            return "".join(ch.choices[0].text for ch in client.completions.create(
                model="tiny-chat", prompt=q, max_tokens=10, temperature=0, stream=True) if ch.choices)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            together = list(pool.map(stream, prompts))
        check(together == alone, f"8 concurrent streams {together} != one at a time {alone}")

        try:
            openai.OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0).models.list()
            check(False, "a wrong key was accepted")
        except openai.AuthenticationError as e:
            check(e.status_code == 401, "401")
        try:
            client.completions.create(model="no-such-model", prompt="x", max_tokens=2)
            check(False, "an unknown model was accepted")
        except openai.NotFoundError as e:
            check(e.status_code == 404 and "no-such-model" in str(e), "404 model")
        auth = {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"}
        error_of(raw(base + "/v1/completions", b"{not json", auth), 400)
        error_of(raw(base + "/v1/completions", json.dumps({"model": "tiny-chat", "prompt": 5}).encode(), auth), 400)
        big = json.dumps({"model": "tiny-chat", "prompt": "a " * 10000}).encode()
        error_of(raw(base + "/v1/completions", big, auth), 413)
        long = json.dumps({"model": "tiny-chat", "prompt": "word " * 200, "max_tokens": 4}).encode()
        check(error_of(raw(base + "/v1/completions", long, auth), 400)["code"] == "context_length_exceeded", "context")
        error_of(raw(base + "/v1/nothing", b"{}", auth), 404)

        # curl, streaming: server-sent events ending with [DONE]
        out = subprocess.run(["curl", "-sN", base + "/v1/chat/completions", "-H", "Authorization: Bearer " + KEY,
                              "-H", "Content-Type: application/json", "-d",
                              json.dumps({"model": "tiny-chat", "messages": msgs, "max_tokens": 10,
                                          "temperature": 0, "stream": True})],
                             capture_output=True, text=True, check=True).stdout
        events = [line[6:] for line in out.splitlines() if line.startswith("data: ")]
        check(events[-1] == "[DONE]", f"curl stream {out[-200:]!r}")
        check("".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1]) == content,
              "curl stream text")
        check(raw(base + "/health", None, method="GET") == (200, {"status": "ok"}), "healthy after all of it")
        check(p.poll() is None, "still running")
    finally:
        p.terminate()
        p.wait(timeout=30)


def bundle_server(tmp):
    bundle = tmp / "two.nexus"
    skills = REPO / "tests/data/skills"
    subprocess.run([NEXUS, "bundle", "create", "--teacher", str(skills / "adder"), "--teacher", str(skills / "facts"),
                    "-o", str(bundle)], check=True, capture_output=True)
    p, base = start(str(bundle))
    try:
        client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
        check([m.id for m in client.models.list().data] == ["two.nexus"], "bundle models list")
        c = client.completions.create(model="two.nexus", prompt="12+34=", max_tokens=6, temperature=0)
        check(len(c.choices[0].text.encode()) <= 6, f"bundle completion {c}")
        s = "".join(ch.choices[0].text for ch in client.completions.create(
            model="two.nexus", prompt="12+34=", max_tokens=6, temperature=0, stream=True) if ch.choices)
        check(s == c.choices[0].text, "bundle stream")
        try:
            client.chat.completions.create(model="two.nexus", messages=[{"role": "user", "content": "x"}])
            check(False, "chat through a bundle was accepted")
        except openai.BadRequestError as e:
            check(e.status_code == 400, "bundle chat 400")
        check(raw(base + "/health", None, method="GET")[0] == 200, "bundle healthy")
    finally:
        p.terminate()
        p.wait(timeout=30)


with tempfile.TemporaryDirectory() as d:
    model_server(Path(d))
    bundle_server(Path(d))
print(f"serve: {checks} checks passed (OpenAI client {openai.__version__}, curl)")
