#!/usr/bin/env bash
# The main job on a small embedded default, end to end on a CPU:
#   1. render 256 training scene pairs and 64 held-out ones (64 px) + a preview sheet,
#   2. train a ResNet-18 with all three objectives (contrast + depth/normal/contour +
#      adversarial adaptation to the mate-backgrounds photos),
#   3. export the backbone and evaluate it against random init (Fashion-MNIST and
#      photo-patches k-NN and linear probes at the benchmark's sizes, dense probes on the
#      held-out shards) into a report,
#   4. predict depth, normals and contours on real photos the run never saw (the
#      photo-patches photographs) with the exported heads, score the depth zero-shot on
#      Middlebury 2014 Motorcycle, and link the contact sheet and the scores in the report.
# Safe to re-run: finished shards, training steps and exports are reused.
# Output folder: $SYNTHSSL_DEMO_OUT (default ./out/demo).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
OUT="${SYNTHSSL_DEMO_OUT:-$ROOT/out/demo}"
mkdir -p "$OUT"

echo "== 1/5 render training and held-out scenes -> $OUT/shards, $OUT/heldout"
render-scenes demo "out=$OUT/shards" --resume --preview "$OUT/preview.png"   # render/configs/demo.yaml
render-scenes demo "out=$OUT/heldout" scenes=64 seed=1 --resume
render-scenes validate "$OUT/shards"

echo "== 2/5 train (train/configs/demo.yaml) -> $OUT/run"
RESUME=()
[ -f "$OUT/run/checkpoint.pt" ] && RESUME=(--resume)
train-ssl demo "data.shards=[$OUT/shards]" "train.out=$OUT/run" "${RESUME[@]}"

echo "== 3/5 exported backbone: $OUT/run/export/backbone.pt (torchvision state_dict), heads: $OUT/run/export/heads.pt"

echo "== 4/5 evaluate against random init -> $OUT/report"
# The benchmark's probe sizes: 10,000 Fashion-MNIST training images per seed and the whole
# 10,000-image test set (photo-patches: its whole 3,600 / 1,200 split). With 500 test images the
# probes' own error (about 2 points) is larger than the differences they are meant to show.
train-ssl eval eval "backbone=$OUT/run/export" "benchmarks=[fashion-mnist,photo-patches]" "shards=[$OUT/heldout]" \
  image.train_size=10000 image.test_size=10000 "run=$OUT/run" "out=$OUT/report"

echo "== 5/5 predict on real photos (heads.pt) -> $OUT/predict"
train-ssl predict "run=$OUT/run" images=/usr/share/synthssl/photo-patches zero_shot=true "out=$OUT/predict"
{
  echo
  echo "## Depth, normals and contours on real photos (\`train-ssl predict\`)"
  echo
  echo "The exported heads on the photographs of photo-patches (lomiri-wallpapers-16.04; never seen in training):"
  echo "[contact sheet](../predict/contact_sheet.png) (input | depth | normals | contours; maps in \`../predict/<photo>/\`)."
  echo
  echo "![contact sheet](../predict/contact_sheet.png)"
  echo
  echo "Zero-shot depth on Middlebury 2014 Motorcycle (per-image median scaling, docs/eval.md):"
  echo
  python - "$OUT/predict/zero_shot.json" <<'PY'
import json, sys
z = json.load(open(sys.argv[1]))
print("| fed at (px) | AbsRel ↓ | δ<1.25 (%) ↑ | Spearman ρ ↑ |\n| --- | --- | --- | --- |")
print(f"| {z['size']} | {z['abs_rel']:.3f} | {z['delta1']:.1f} | {z['spearman']:.3f} |")
PY
} >> "$OUT/report/report.md"
echo "report: $OUT/report/report.md (contact sheet: $OUT/predict/contact_sheet.png)"
