#!/usr/bin/env bash
# Stitching SmolLM2-135M-Instruct (Llama family, its own tokenizer) into Gemma 3 270M's head, across
# tokenizers: the share of Gemma's advantage over its unigram distribution that a bridge carries from
# SmolLM2's best layer into Gemma's last layer, on held-out documents.
#   1. The feature store of bench/fusion/align.sh (SmolLM2 and Gemma over bench/fusion/corpus.jsonl, top-k 32),
#      made here with the same command if it is not there yet (resumed if partial);
#   2. SmolLM2's best layer: the highest held-out ridge R² into Gemma's last layer (nexus align, each stored layer);
#   3. the closed-form bridge: ridge from that layer (λ on the held-out documents), saved as a linear bridge
#      (train-bridge --steps 0: the KL of its start is measured, nothing is trained);
#   4. the trained bridge: an MLP (hidden 1024) with a linear skip path started at the same ridge map and a
#      zero-initialised body, trained with KL through Gemma's frozen final norm and head against Gemma's
#      stored top-32 distributions; the parameters best on held-out KL are kept, so it is never worse than
#      its start there. Gemma's head has 262,144 rows (168M multiply-adds per position, forward and again
#      backward), so training uses 3,000 training positions and 512 held-out ones, a few minutes on 2 cores;
#   5. nexus score on the store's held-out documents (8 of 40, split by document) for both bridges: Gemma's
#      next-token loss at the shared boundaries for Gemma itself, the stitched path and Gemma's unigram, the
#      unigram being the mean of Gemma's stored top-32 distributions over the training documents.
# Writes bench/results/stitch_smollm2_gemma3.json (+ .curve.png, .env.json).
# Usage: bash bench/fusion/stitch.sh [BUILD_DIR]      (about 10 minutes on 2 cores once the store exists)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
store=${STORE:-/tmp/nexus_align_store}
threads=${THREADS:-2}
steps=${STEPS:-150}
work=${WORK:-/tmp/nexus_stitch}
out=bench/results/stitch_smollm2_gemma3
cmake --build "$build" --target nexus_cli -j2 > /dev/null
nexus=$build/nexus
mkdir -p "$work" bench/results
t0=$(date +%s)
# The store of bench/fusion/align.sh: the same arguments, so either script makes or resumes it.
"$nexus" extract --teacher "$smol" --teacher "$gemma" --corpus bench/fusion/corpus.jsonl \
  --layers 0,2,4,6,8,10,12,14,16,-1,-3,-5,-7,-9,-11,-13,final --topk 32 --context 512 --dtype bf16 \
  --threads "$threads" --out "$store" --quiet
t1=$(date +%s)
# Best layer of SmolLM2 by held-out ridge R² into Gemma's last layer (17).
best=""; best_r2=-1e9
for l in 0 2 4 6 8 10 12 14 16 17 19 21 23 25 27 29; do
  "$nexus" align --store "$store" --from 0:$l --to 1:-1 --method ridge --quiet --out "$work/ridge_$l.json" > /dev/null
  r2=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['pairs'][0]['methods']['ridge']['r2'])" "$work/ridge_$l.json")
  echo "layer $l: ridge R² $r2"
  if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$r2" "$best_r2"; then best=$l; best_r2=$r2; fi
done
echo "best SmolLM2 layer: $best (ridge R² $best_r2 into Gemma's layer 17)"
common=(--store "$store" --from 0:$best --to 1:-1 --objective kl --init closed-form --max-train 3000 --max-heldout 512
        --batch 32 --threads "$threads" --checkpoint-every 25 --quiet)
t2=$(date +%s)
"$nexus" train-bridge "${common[@]}" --kind linear --steps 0 --out "$work/closed_form.safetensors"
"$nexus" train-bridge "${common[@]}" --kind mlp --hidden 1024 --steps "$steps" --lr 1e-3 --warmup 15 --eval-every 15 \
  --seed 0 --out "$work/mlp.safetensors"
t3=$(date +%s)
for b in closed_form mlp; do
  "$nexus" score --stitch "$smol:$best,$gemma:-1" --bridge "$work/$b.safetensors" --heldout-of "$store" \
    --unigram-store "$store" --threads "$threads" --json > "$work/score_$b.json"
done
t4=$(date +%s)
cp "$work/mlp.curve.png" "$out.curve.png"
python3 - "$out" "$work" "$best" "$best_r2" "$steps" "$((t1 - t0))" "$((t3 - t2))" "$((t4 - t3))" <<'PY'
import json, platform, subprocess, sys
out, work, best, best_r2, steps, t_store, t_train, t_score = sys.argv[1:]
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return ""
def load(p): return json.load(open(p))
cf, mlp = load(f"{work}/closed_form.curve.json"), load(f"{work}/mlp.curve.json")
scores = {b: load(f"{work}/score_{b}.json") for b in ("closed_form", "mlp")}
ridge = {int(l): load(f"{work}/ridge_{l}.json")["pairs"][0]["methods"]["ridge"]["r2"]
         for l in (0, 2, 4, 6, 8, 10, 12, 14, 16, 17, 19, 21, 23, 25, 27, 29)}
b = scores["mlp"]["shared_boundaries"]
report = {
  "what": "share of Gemma 3 270M's advantage over its unigram carried by a bridge from SmolLM2-135M's best layer into "
          "Gemma's last layer (Gemma's final norm and head follow), on the held-out documents of the store",
  "smollm2_layer": int(best), "gemma_layer": 17, "ridge_r2_by_smollm2_layer": ridge,
  "heldout_text": scores["mlp"]["text"], "shared_boundaries": b["count"], "unigram": b["unigram"],
  "loss_unit": b["unit"],
  "loss_gemma": b["loss_b"], "loss_unigram": b["loss_unigram"],
  "closed_form": {"bridge": "linear, ridge (lambda on held-out documents)", "lambda": cf["closed_form"]["lambda"],
                  "heldout_r2": cf["closed_form"]["heldout_r2"], "heldout_kl_store": cf["initial_held_out"],
                  "loss_stitched": scores["closed_form"]["shared_boundaries"]["loss_stitched"],
                  "share": scores["closed_form"]["shared_boundaries"]["share"]},
  "trained_mlp": {"bridge": "MLP hidden 1024 + linear skip started at the ridge map, KL through Gemma's head",
                  "heldout_kl_store_start": mlp["initial_held_out"], "heldout_kl_store_best": mlp["best_held_out"],
                  "best_step": mlp["best_step"], "steps": int(steps), "train_rows": mlp["train_rows"],
                  "heldout_rows": mlp["heldout_rows"], "options": mlp["options"], "seconds": mlp["seconds"],
                  "curve": mlp["curve"],
                  "loss_stitched": scores["mlp"]["shared_boundaries"]["loss_stitched"],
                  "share": scores["mlp"]["shared_boundaries"]["share"]},
  "scores": scores,
}
json.dump(report, open(out + ".json", "w"), indent=2)
env = {"command": "bash bench/fusion/stitch.sh", "store_seconds": int(t_store), "train_seconds": int(t_train),
       "score_seconds": int(t_score), "git": sh("git rev-parse HEAD"),
       "cpu": sh("lscpu | grep 'Model name' | sed 's/.*: *//'"), "cores": sh("nproc"), "os": platform.platform(),
       "compiler": sh("c++ --version | head -1"),
       "openblas": sh("dpkg-query -W -f='${Version}' libopenblas0-pthread libopenblas0 2>/dev/null | head -c 40"),
       "models": {"smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf sha256 b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                  "gemma3": "gemma-3-270m-q4_k_m.gguf sha256 a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"},
       "corpus": "bench/fusion/corpus.jsonl sha256 " + sh("sha256sum bench/fusion/corpus.jsonl | cut -d' ' -f1")}
json.dump(env, open(out + ".env.json", "w"), indent=2)
print(f"SmolLM2 layer {best} -> Gemma layer 17 at {b['count']} held-out shared boundaries (nats/token): "
      f"Gemma {b['loss_b']:.4f}, unigram {b['loss_unigram']:.4f}; closed-form {report['closed_form']['loss_stitched']:.4f} "
      f"(share {report['closed_form']['share']:.3f}), trained MLP {report['trained_mlp']['loss_stitched']:.4f} "
      f"(share {report['trained_mlp']['share']:.3f})")
PY
