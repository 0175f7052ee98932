"""`import nexus` against references made by transformers (the fixtures' outputs.safetensors, the skill
teachers' reference.jsonl, the brute-force byte-level value of tests/data/fusion/score.txt) and the
feature store's arrays as NumPy views. Run by tools/test.sh with the built module on PYTHONPATH and
NEXUS_TEST_DATA, NEXUS_CLI set."""
import json
import os
import struct
import subprocess

import numpy as np
import pytest

import nexus

DATA = os.environ["NEXUS_TEST_DATA"]
CLI = os.environ["NEXUS_CLI"]
LLAMA = os.path.join(DATA, "models", "llama")


def read_safetensors(path):
    """name -> numpy array, read by hand (no dependency beyond NumPy)."""
    types = {"F32": np.float32, "I64": np.int64, "I32": np.int32}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        body = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype=types[t["dtype"]]).reshape(t["shape"])
    return out


@pytest.fixture(scope="module")
def llama():
    return nexus.load(LLAMA, threads=1)


def test_version_is_the_projects():
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "CMakeLists.txt")) as f:
        assert f"project(nexus VERSION {nexus.__version__} " in f.read()


def test_logits_equal_transformers(llama):
    ref = read_safetensors(os.path.join(LLAMA, "outputs.safetensors"))
    for seq in ("seq0", "seq1", "seq2"):
        ids = [int(i) for i in ref[f"{seq}.input_ids"]]
        got = llama.logits(ids)
        want = ref[f"{seq}.logits"]
        assert got.shape == want.shape and got.dtype == np.float32
        nmse = float(np.sum((got.astype(np.float64) - want) ** 2) / np.sum(want.astype(np.float64) ** 2))
        assert nmse <= 1e-8, (seq, nmse)


def test_generate_streams_transformers_greedy_tokens(llama):
    ref = read_safetensors(os.path.join(LLAMA, "outputs.safetensors"))
    ids = [int(i) for i in ref["seq1.input_ids"]]
    greedy = [int(i) for i in ref["seq1.greedy"]]  # 16 new tokens, no eos
    pieces = list(llama.generate(ids, max_new_tokens=16, stop_tokens=[]))
    assert len(pieces) >= 1
    assert "".join(pieces) == llama.tokenizer.decode(greedy, skip_special_tokens=True)  # streamed text: no special tokens


def test_generate_can_stop_early_and_run_again(llama):
    stream = llama.generate("The quick brown fox", max_new_tokens=16, stop_tokens=[])
    first = next(iter(stream))
    del stream  # cancelled at its next piece; the model is free again
    again = list(llama.generate("The quick brown fox", max_new_tokens=16, stop_tokens=[]))
    assert again and again[0] == first


def test_skill_teacher_answers_as_transformers():
    adder = os.path.join(DATA, "skills", "adder")
    m = nexus.load(adder, threads=1)
    with open(os.path.join(adder, "reference.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()][:5]
    for r in rows:
        # The skill teachers were trained after the root context (as the C++ tests read them).
        text = "".join(m.generate(m.root_context + m.tokenizer.encode(r["prompt"]), max_new_tokens=8, stop=["\n"]))
        assert text + "\n" == r["text"], r


def test_score_equals_the_brute_force_reference(llama):
    with open(os.path.join(DATA, "fusion", "score.txt")) as f:
        text = f.read()
    s = llama.score(text)
    assert s["bits_per_byte"] == pytest.approx(5.6408, abs=5e-5)  # test_byte_level_reference.cpp's brute force
    assert s["bytes"] == len(text.encode())


def test_tokenizer_round_trip():
    tok = nexus.load_tokenizer(LLAMA)
    ids = tok.encode("Hello world")
    assert all(isinstance(i, int) for i in ids)
    assert tok.decode(ids) == "Hello world"


def test_errors_are_typed():
    with pytest.raises(nexus.Error):
        nexus.load(os.path.join(DATA, "no-such-model"))
    m = nexus.load(LLAMA, threads=1)
    with pytest.raises(ValueError):
        m.generate("x", temperature=-1.0)
    with pytest.raises(nexus.UsageError):
        m.logits([])


def test_bundle_scores_each_mode_and_generates(tmp_path):
    bundle = tmp_path / "skills.nexus"
    skills = os.path.join(DATA, "skills")
    subprocess.run([CLI, "bundle", "create", "--teacher", f"{skills}/adder", "--teacher", f"{skills}/facts",
                    "--fit", f"{skills}/facts/dev.jsonl", "--prefix-bytes", "8", "--quiet", "-o", str(bundle)],
                   check=True, capture_output=True)
    s = nexus.load(str(bundle), threads=1)
    assert s.teachers == ["adder", "facts"]
    every = s.score("fact tomu: blue fox\n")
    assert set(every["teachers"]) == {"adder", "facts"}
    mixture = s.score("fact tomu: blue fox\n", mode="mixture")
    assert mixture["bits_per_byte"] == pytest.approx(every["mixture"], rel=1e-9)
    assert [t["bytes_read"] for t in mixture["teachers"]] == [20, 20]
    text = "".join(s.generate("fact tomu:", max_bytes=16, stop=["\n"], mode="mixture"))
    assert text and "\n" not in text
    with pytest.raises(ValueError):
        s.generate("x", mode="nonsense")


def test_feature_store_arrays_are_views(tmp_path):
    store_dir = tmp_path / "store"
    subprocess.run([CLI, "extract", "--teacher", LLAMA, "--corpus", os.path.join(LLAMA, "config.json"),
                    "--layers", "0,final", "--topk", "4", "--context", "16", "--out", str(store_dir), "--quiet"],
                   check=True, capture_output=True)
    store = nexus.FeatureStore(str(store_dir))
    assert store.teachers and len(store) == store.windows > 0 and store.top_k == 4
    w = store.window(0)
    n = w.tokens(0)
    a, b = w.topk_logprobs(0), w.topk_logprobs(0)
    assert a.shape == (n, 4) and a.dtype == np.float32
    assert not a.flags.owndata and not a.flags.writeable
    assert np.shares_memory(a, b)  # both views of the mapped shard: nothing copied
    assert np.all(np.diff(a, axis=1) <= 0)  # top-k in descending order
    assert w.topk_ids(0).shape == (n, 4) and w.ids(0).shape == (n,) and w.spans(0).shape == (n, 2)
    h = w.hidden(0, "final")
    assert h.shape == (n, store.hidden_size(0))
    del store, w  # the arrays keep the store open
    assert np.isfinite(a).all() and np.isfinite(h.astype(np.float64) if h.dtype == np.float32 else 1.0).all()
    with pytest.raises(nexus.Error):
        nexus.FeatureStore(str(tmp_path / "missing"))
