#!/usr/bin/env bash
# The full recipe behind the shipped models: train both, then export, quantise, evaluate.
#   scripts/reproduce.sh fer2013.csv(.gz) fer2013new.csv [runs]
# Trained on one H100 (about 8 minutes per run, two runs sharing the GPU). On a CPU it works
# too (add nothing: --device auto), at roughly 2 minutes an epoch on 2 cores.
set -euo pipefail
DATA=${1:?usage: reproduce.sh FER2013_CSV FERPLUS_VOTES [RUNS]}
VOTES=${2:?usage: reproduce.sh FER2013_CSV FERPLUS_VOTES [RUNS]}
RUNS=${3:-runs}
# FER2013: the shipped model (PublicTest 68.46%, selected among 4 runs on PublicTest only).
fer-edge train --data "$DATA" --dataset fer2013 --out "$RUNS/fer2013" \
  --epochs 120 --batch-size 128 --lr 0.1 --seed 2 --dropout 0.3 --erase 0.6
# FERPlus, majority-vote protocol for evaluation, trained on the vote distribution.
fer-edge train --data "$DATA" --dataset ferplus --votes "$VOTES" --out "$RUNS/ferplus" \
  --epochs 63 --batch-size 128 --lr 0.1 --seed 0
bash scripts/ship_models.sh "$DATA" "$VOTES" "$RUNS"
