"""The retention benchmark's corpus (issue 16): six domains from texts reachable offline through the
package registries, cut into documents of about --bytes bytes at line breaks, the first --dev of each
domain for development and the next --test for test. Writes JSON lines {"domain", "split", "source", "text"};
the file is committed, so a run does not depend on what this machine has installed.

  python3 bench/fusion/make_retention_corpus.py > bench/fusion/retention_corpus.jsonl
Sources: Python's standard library (this interpreter's), C headers (libc6-dev), the GPL-3 text
(base-files), and the German, Spanish and Italian fortune collections (Debian: fortunes-de, fortunes-es,
fortunes-it).
"""
import argparse, json, os, sysconfig

p = argparse.ArgumentParser()
p.add_argument("--bytes", type=int, default=320)
p.add_argument("--dev", type=int, default=2)
p.add_argument("--test", type=int, default=2)
a = p.parse_args()

lib = sysconfig.get_paths()["stdlib"]
F = "/usr/share/games/fortunes"
domains = {
    "python": [os.path.join(lib, f) for f in ["textwrap.py", "shlex.py", "fnmatch.py", "bisect.py", "colorsys.py"]],
    "c": ["/usr/include/stdio.h", "/usr/include/string.h", "/usr/include/stdlib.h", "/usr/include/errno.h"],
    "english": ["/usr/share/common-licenses/GPL-3"],
    "german": [f"{F}/de/anekdoten", f"{F}/de/wusstensie", f"{F}/de/zitate"],
    "spanish": [f"{F}/es/asimov.fortunes", f"{F}/es/ciencia.fortunes", f"{F}/es/amistad.fortunes"],
    "italian": [f"{F}/it/italia", f"{F}/it/leggi", f"{F}/it/definizioni"],
}


def documents(path):
    """Documents of about a.bytes bytes, cut at line breaks, skipping the first 2 KB (licence headers)."""
    raw = open(path, "rb").read().decode("utf-8", errors="strict")
    text = raw[2048:] if len(raw.encode()) > 8192 else raw
    text = text[text.index("\n") + 1:]
    doc = ""
    for line in text.splitlines(keepends=True):
        if line.strip() in ("%", ""):  # fortune separators and blank lines end nothing but are dropped
            if line.strip() == "%":
                continue
        if len((doc + line).encode()) > a.bytes and doc:
            yield doc.rstrip("\n")
            doc = ""
        doc += line
    if doc.strip():
        yield doc.rstrip("\n")


for domain, files in domains.items():
    docs = []
    for f in files:
        if not os.path.exists(f):
            continue
        for d in documents(f):
            if len(d.encode()) >= a.bytes // 2:
                docs.append((f, d))
            if len(docs) >= a.dev + a.test:
                break
        if len(docs) >= a.dev + a.test:
            break
    if len(docs) < a.dev + a.test:
        raise SystemExit(f"{domain}: only {len(docs)} documents (install the packages named at the top)")
    for i, (f, d) in enumerate(docs):
        split = "dev" if i < a.dev else "test"
        print(json.dumps({"domain": domain, "split": split, "source": f.replace(lib, "<stdlib>"), "text": d},
                         ensure_ascii=False))
