#!/usr/bin/env python3
"""Trains the three synthetic-skill teachers of issue 16's retention test and writes them under tests/data/skills.

    /work/venv-fix/bin/python tools/fusion/make_skill_teachers.py [--out DIR] [--steps N]

Each teacher is a tiny model of its own family and tokenizer, trained on one skill the others lack:

  adder     Llama, the qwen2 tokenizer kind (byte-level BPE, digits one by one)   "37+85=" -> "122"
  reverser  GPT-2, the gpt2 tokenizer kind (byte-level BPE)                      "reverse c a h:" -> " h a c"
  facts     Gemma, the gemma tokenizer kind (SentencePiece-style, byte fallback) "fact zuvo:" -> " red owl"

An answer ends with "\\n". The loss is on the answer's tokens only. The tokenizers are the committed kinds of
tests/data/tokenizers (made by tools/fixtures/make_tokenizers.py), so nothing here trains a vocabulary.

Writes, for each skill, tests/data/skills/<skill>/:
  config.json, model.safetensors, tokenizer.json, tokenizer_config.json, special_tokens_map.json
  dev.jsonl      prompts and answers for fitting a fused system (never trained on, except facts: see below)
  heldout.jsonl  prompts and answers for measuring it (never trained on)
  reference.jsonl  transformers' greedy continuation (after the root context: the tokenizer's prefix, else bos,
                 else eos, as for training) (up to the first "\\n", at most 8 tokens) of every
                 held-out prompt: what Nexus must reproduce for the teacher alone
and tests/data/skills/README.md with each teacher's held-out exact-match accuracy under transformers.

The facts skill is recall of a fixed table: its dev and held-out prompts are table entries (the skill is the
table); the two others are held out by operand. Deterministic: fixed seeds, one thread.
"""
import os

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

EXPECTED_VERSIONS = {"transformers": "4.57.6", "torch": "2.9.1"}
REPO = Path(__file__).resolve().parents[2]
KINDS = REPO / "tests" / "data" / "tokenizers"
MAX_NEW_TOKENS = 8
N_DEV, N_HELDOUT = 100, 100

COLOURS = ["red", "blue", "green", "black", "white", "gold", "grey", "pink"]
ANIMALS = ["owl", "fox", "cat", "elk", "yak", "bee", "cod", "ant"]


def addition_examples(rng):
    pairs = [(a, b) for a in range(100) for b in range(100)]
    rng.shuffle(pairs)
    ex = [(f"{a}+{b}=", f"{a + b}\n") for a, b in pairs]
    return ex[N_DEV + N_HELDOUT:], ex[:N_DEV], ex[N_DEV:N_DEV + N_HELDOUT]


def reversal_examples(rng):
    letters = "abcdefghij"
    seen, ex = set(), []
    while len(ex) < 12000:
        s = tuple(rng.choice(letters) for _ in range(rng.randint(3, 5)))
        if s in seen:
            continue
        seen.add(s)
        ex.append((f"reverse {' '.join(s)}:", " " + " ".join(reversed(s)) + "\n"))
    return ex[N_DEV + N_HELDOUT:], ex[:N_DEV], ex[N_DEV:N_DEV + N_HELDOUT]


def fact_examples(rng):
    cons, vows = "bdfgklmnprstvz", "aeiou"
    names = set()
    while len(names) < 64:
        names.add(rng.choice(cons) + rng.choice(vows) + rng.choice(cons) + rng.choice(vows))
    names = sorted(names)
    values = [f" {c} {a}" for c in COLOURS for a in ANIMALS]
    rng.shuffle(values)
    table = [(f"fact {n}:", v + "\n") for n, v in zip(names, values)]
    # A table is its own test: dev and held-out prompts are entries (different orders), training is the table.
    dev, held = table[:], table[:]
    rng.shuffle(dev)
    rng.shuffle(held)
    return table, dev[:N_DEV], held[:N_HELDOUT]


def make_model(family, vocab, bos, eos, pad):
    common = dict(vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=192, max_position_embeddings=64, bos_token_id=bos, eos_token_id=eos,
                  pad_token_id=pad, tie_word_embeddings=True, attn_implementation="eager")
    if family == "llama":
        return transformers.LlamaForCausalLM(transformers.LlamaConfig(num_key_value_heads=2, **common))
    if family == "gemma":
        cfg = transformers.GemmaConfig(num_key_value_heads=1, head_dim=16, hidden_activation="gelu_pytorch_tanh",
                                       **common)
        return transformers.GemmaForCausalLM(cfg)
    if family == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=vocab, n_embd=64, n_layer=2, n_head=4, n_inner=192, n_positions=64,
                                      bos_token_id=bos, eos_token_id=eos, pad_token_id=pad,
                                      tie_word_embeddings=True, attn_implementation="eager")
        return transformers.GPT2LMHeadModel(cfg)
    raise ValueError(family)


def root_ids(tok):
    """The context every text starts from, as Nexus's byte-level view has it (fusion/bytes/byte_level.hpp): what the
    tokenizer puts before a text, else bos, else eos (a model needs one token to predict the first)."""
    ids = tok("x")["input_ids"]
    bare = tok("x", add_special_tokens=False)["input_ids"]
    prefix = ids[: len(ids) - len(bare)]
    if prefix:
        return prefix
    return [tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id]


def encode(tok, prompt, answer):
    """Prompt and answer ids after the root, as the tokenizer reads the whole text (answers start at a token
    boundary)."""
    root = root_ids(tok)
    full = root + tok(prompt + answer, add_special_tokens=False)["input_ids"]
    p = root + tok(prompt, add_special_tokens=False)["input_ids"]
    if full[: len(p)] != p:
        sys.exit(f"'{prompt}' is not a token prefix of '{prompt + answer}'")
    return full, len(p)


def train(model, tok, examples, steps, seed):
    torch.manual_seed(seed)
    rng = random.Random(seed)
    data = [encode(tok, p, a) for p, a in examples]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    model.train()
    for step in range(steps):
        batch = [data[rng.randrange(len(data))] for _ in range(64)]
        n = max(len(ids) for ids, _ in batch)
        x = torch.full((len(batch), n), pad, dtype=torch.long)
        y = torch.full((len(batch), n), -100, dtype=torch.long)
        att = torch.zeros((len(batch), n), dtype=torch.long)
        for i, (ids, np_) in enumerate(batch):
            x[i, : len(ids)] = torch.tensor(ids)
            att[i, : len(ids)] = 1
            y[i, np_: len(ids)] = torch.tensor(ids[np_:])  # loss on the answer only (labels shift inside)
        loss = model(input_ids=x, attention_mask=att, labels=y).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 200 == 0 or step == steps - 1:
            print(f"  step {step:5d} loss {loss.item():.4f}", flush=True)
    model.eval()


@torch.no_grad()
def greedy(model, tok, prompt):
    """Greedy tokens after the prompt until a token whose text holds "\\n", eos, or MAX_NEW_TOKENS."""
    ids = root_ids(tok) + tok(prompt, add_special_tokens=False)["input_ids"]
    out = []
    for _ in range(MAX_NEW_TOKENS):
        logits = model(input_ids=torch.tensor([ids + out])).logits[0, -1]
        nxt = int(torch.argmax(logits))
        out.append(nxt)
        if nxt == tok.eos_token_id or "\n" in tok.decode(out[-1:]):
            break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "data" / "skills")
    ap.add_argument("--steps", type=int, default=2500)
    args = ap.parse_args()
    for mod, want in EXPECTED_VERSIONS.items():
        have = sys.modules[mod].__version__.split("+")[0]
        if have != want:
            sys.exit(f"make_skill_teachers: {mod} {have} found, {want} required (tools/fixtures/requirements.txt)")
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()

    skills = [("adder", "llama", "qwen2", addition_examples, 1),
              ("reverser", "gpt2", "gpt2", reversal_examples, 2),
              ("facts", "gemma", "gemma", fact_examples, 3)]
    if args.out.exists():
        shutil.rmtree(args.out)
    summary = []
    for name, family, kind, make, seed in skills:
        print(f"{name}: {family} with the {kind} tokenizer", flush=True)
        tok = PreTrainedTokenizerFast.from_pretrained(KINDS / kind)
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        trainset, dev, held = make(random.Random(seed))
        torch.manual_seed(seed)
        model = make_model(family, len(tok), tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
        train(model, tok, trainset, args.steps, seed)
        out = args.out / name
        out.mkdir(parents=True)
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
        for f in ("generation_config.json",):
            (out / f).unlink(missing_ok=True)
        correct, refs = 0, []
        for p, a in held:
            ids = greedy(model, tok, p)
            text = tok.decode(ids, skip_special_tokens=True)
            correct += text == a
            refs.append({"prompt": p, "ids": ids, "text": text})
        for fname, rows in (("dev.jsonl", dev), ("heldout.jsonl", held)):
            with open(out / fname, "w") as f:
                for p, a in rows:
                    f.write(json.dumps({"prompt": p, "answer": a}) + "\n")
        with open(out / "reference.jsonl", "w") as f:
            for r in refs:
                f.write(json.dumps(r) + "\n")
        acc = correct / len(held)
        print(f"  held-out exact match {acc:.2%}", flush=True)
        summary.append((name, family, kind, len(trainset), acc))

    with open(args.out / "README.md", "w") as f:
        f.write("# Synthetic-skill teachers\n\nMade by `tools/fusion/make_skill_teachers.py` "
                f"(transformers {transformers.__version__}, torch {torch.__version__}, {args.steps} steps each).\n\n"
                "| teacher | family | tokenizer | training examples | held-out exact match (transformers, greedy) |\n"
                "|---|---|---|---|---|\n")
        for name, family, kind, n, acc in summary:
            f.write(f"| {name} | {family} | {kind} | {n} | {acc:.0%} |\n")


if __name__ == "__main__":
    main()
