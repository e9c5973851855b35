#!/usr/bin/env bash
# The main job on a small embedded default, end to end on a CPU:
#   1. render 256 training scene pairs and 64 held-out ones (64 px) + a preview sheet,
#   2. train a ResNet-18 with all three objectives (contrast + depth/normal/contour +
#      adversarial adaptation to the mate-backgrounds photos),
#   3. export the backbone and evaluate it against random init (Fashion-MNIST and
#      photo-patches k-NN and linear probes, dense probes on the held-out shards) into a report.
# Safe to re-run: finished shards, training steps and exports are reused.
# Output folder: $SYNTHSSL_DEMO_OUT (default ./out/demo).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
OUT="${SYNTHSSL_DEMO_OUT:-$ROOT/out/demo}"
mkdir -p "$OUT"

echo "== 1/4 render training and held-out scenes -> $OUT/shards, $OUT/heldout"
render-scenes --out "$OUT/shards" --scenes 256 --size 64 --seed 0 --resume --preview "$OUT/preview.png"
render-scenes --out "$OUT/heldout" --scenes 64 --size 64 --seed 1 --resume
render-scenes validate "$OUT/shards"

echo "== 2/4 train (train/configs/demo.yaml) -> $OUT/run"
RESUME=()
[ -f "$OUT/run/checkpoint.pt" ] && RESUME=(--resume)
train-ssl "$ROOT/train/configs/demo.yaml" "data.shards=[$OUT/shards]" "train.out=$OUT/run" "${RESUME[@]}"

echo "== 3/4 exported backbone: $OUT/run/export/backbone.pt (torchvision state_dict)"

echo "== 4/4 evaluate against random init -> $OUT/report"
train-ssl eval --backbone "$OUT/run/export" --fashion-mnist --photo-patches --shards "$OUT/heldout" --run "$OUT/run" \
  --config "$ROOT/train/configs/eval.yaml" --out "$OUT/report"
echo "report: $OUT/report/report.md"
