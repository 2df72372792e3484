#!/usr/bin/env bash
# From trained checkpoints to the shipped models in fer_edge/weights/ and their evidence in
# benchmarks/models/:  scripts/ship_models.sh fer2013.csv.gz fer2013new.csv [runs]
# Expects RUNS/fer2013/best.pt and RUNS/ferplus/best.pt (scripts/reproduce.sh makes them).
set -euo pipefail
DATA=${1:?usage: ship_models.sh FER2013_CSV FERPLUS_VOTES [RUNS]}
VOTES=${2:?usage: ship_models.sh FER2013_CSV FERPLUS_VOTES [RUNS]}
RUNS=${3:-runs}
W=fer_edge/weights
B=benchmarks/models
mkdir -p "$W" "$B"
for ds in fer2013 ferplus; do
  ckpt=$RUNS/$ds/best.pt
  extra=()
  [ "$ds" = ferplus ] && extra=(--votes "$VOTES")
  # Selection was on PublicTest during training; both figures are recorded in the checkpoint
  # so export carries them into the ONNX metadata.
  fer-edge evaluate "$ckpt" --data "$DATA" "${extra[@]}" --split PublicTest --record --json --threads 2 > "$B/$ds.fp32.PublicTest.json"
  fer-edge evaluate "$ckpt" --data "$DATA" "${extra[@]}" --split PrivateTest --record --tta --json --threads 2 \
    --confusion "$B/$ds.confusion.png" > "$B/$ds.fp32.PrivateTest.json"
  fer-edge export "$ckpt" --data "$DATA" "${extra[@]}" --out "$W/$ds.onnx"
  fer-edge quantize "$W/$ds.onnx" --data "$DATA" "${extra[@]}" --manifest "calibration/$ds.json" \
    --target tensorrt --out "$W/$ds.int8.onnx" --report-json "$B/$ds.int8.quantize.json"
  fer-edge quantize "$W/$ds.onnx" --data "$DATA" "${extra[@]}" --manifest "calibration/$ds.json" \
    --target cpu --out "$W/$ds.int8.cpu.onnx" --report-json "$B/$ds.int8.cpu.quantize.json"
  # Each INT8 file records the accuracy measured on itself, replacing the FP32 figures it inherited.
  for m in "$W/$ds.int8.onnx" "$W/$ds.int8.cpu.onnx"; do
    name=$(basename "$m" .onnx)
    fer-edge evaluate "$m" --data "$DATA" "${extra[@]}" --split PublicTest --record --json --threads 2 > "$B/$name.PublicTest.json"
    fer-edge evaluate "$m" --data "$DATA" "${extra[@]}" --split PrivateTest --record --json --threads 2 > "$B/$name.PrivateTest.json"
  done
  fer-edge check-onnx "$W/$ds.onnx"
  fer-edge check-onnx "$W/$ds.int8.onnx"
  fer-edge check-onnx "$W/$ds.int8.cpu.onnx"
done
python scripts/models_table.py
