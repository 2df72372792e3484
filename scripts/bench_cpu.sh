#!/usr/bin/env bash
# Reproduce benchmarks/cpu/: every shipped FER2013 model (plus a .pt checkpoint if given) on this
# CPU, accuracy on the real PrivateTest faces. Run on an idle machine (see benchmarks/README.md).
#
#   scripts/bench_cpu.sh /path/to/fer2013.csv.gz [checkpoint.pt]
#
# ROUNDS (default 5) round-robin passes: on a shared machine one pass lets a burst of someone
# else's work decide the speed-up; the median of each round's own ratio does not.
set -euo pipefail
data="${1:?usage: scripts/bench_cpu.sh /path/to/fer2013.csv.gz [checkpoint.pt]}"
checkpoint="${2:-}"
cd "$(dirname "$0")/.."
weights=fer_edge/weights
models=("$weights/fer2013.onnx" "$weights/fer2013.int8.onnx" "$weights/fer2013.int8.cpu.onnx")
if [[ -n "$checkpoint" ]]; then
    models=("$checkpoint" "${models[@]}")
fi
out=benchmarks/cpu
rounds="${ROUNDS:-5}"
mkdir -p "$out"
python -m fer_edge bench --models "${models[@]}" \
    --data "$data" --split PrivateTest --batch 1,8,64 --threads 2 --rounds "$rounds" \
    --json "$out/fer2013.json" --markdown "$out/fer2013.md" --plot "$out/fer2013.png"
# No arguments: what a fresh install's `fer-edge bench` shows; its Markdown records the wall time
# (the budget is 3 minutes on a 2-core CPU).
python -m fer_edge bench --json "$out/no-args.json" --markdown "$out/no-args.md"
