"""Writes bench/fusion/corpus.jsonl: English prose from Python's own documentation (the pydoc topics that
`help('keywords')` shows, shipped with every CPython as pydoc_data/topics.py, public domain-like PSF text).
Every other topic in sorted order, each cut at the last paragraph break before 1,200 bytes: one document a
topic, so the held-out split by document has many documents. Deterministic for a given CPython version;
the committed file is what the benchmark used (the Python version is recorded in its first line's "source").
Usage: python3 bench/fusion/make_corpus.py > bench/fusion/corpus.jsonl"""
import json
import sys

import pydoc_data.topics as topics

LIMIT = 1200
for i, key in enumerate(sorted(topics.topics)):
    if i % 2:
        continue
    text = topics.topics[key].strip()
    if len(text.encode()) > LIMIT:
        cut = text.encode()[:LIMIT].decode("utf-8", "ignore")
        para = cut.rfind("\n\n")
        text = cut[:para] if para > 200 else cut
    print(json.dumps({"text": text, "topic": key, "source": f"pydoc_data.topics, Python {sys.version.split()[0]}"},
                     ensure_ascii=False))
