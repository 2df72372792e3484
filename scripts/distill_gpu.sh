#!/usr/bin/env bash
# The GPU half of distillation, run on the lent machine (benchmarks/training/distill.md):
#   bash scripts/distill_gpu.sh teachers   # both datasets' teachers at once -> $OUT/t_<ds>/teachers.{npz,json}
#   bash scripts/distill_gpu.sh students   # students from $DEVDATA/teachers_<ds>.npz -> $OUT/s_<ds>/
#   bash scripts/distill_gpu.sh all        # teachers, then students from them, in one command
# Reads $DEVDATA/fer2013.pack (scripts/pack_data.py) and $DEVDATA/fer2013new.csv. Budgets are
# seconds of wall time per stage (env: TEACHER_BUDGET, STUDENT_BUDGET); every run stops inside
# its budget with its outputs written. At most 7 files land in $OUT (the device tool takes 8):
# run.log, t_<ds>/teachers.{npz,json}, s_<ds>/best.pt (its history is inside). Each run's output
# also goes to stdout, prefixed, so the tool's output tail shows progress even after a kill.
set -uo pipefail
STAGE=${1:?usage: distill_gpu.sh teachers|students|all}
DEV=${DEVDATA:-.devdata}
: "${OUT:?set OUT (the device tool sets it)}"
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 FER_EDGE_CACHE_DIR=/tmp/fer-edge-cache
CSV=/tmp/fer2013.csv
VOTES=$DEV/fer2013new.csv
TEACHER_BUDGET=${TEACHER_BUDGET:-480}
STUDENT_BUDGET=${STUDENT_BUDGET:-480}
MEMBERS=${MEMBERS:-d6k2f32x4,d6k3f32x2,d6k2f48x2}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-400}
STUDENT_EPOCHS=${STUDENT_EPOCHS:-100}
KD_T=${KD_T:-4}
KD_A=${KD_A:-0.7}
DEVICE=${DEVICE:-cuda}
# A CPU dry run adds e.g. "--limit 32 --threads 1" to every run (benchmarks/training/distill.md).
EXTRA=${EXTRA_ARGS:-}

t0=$SECONDS
LOGS=/tmp/distill-logs
mkdir -p "$LOGS"
log() { echo "$*" | tee -a "$LOGS/0-script.log"; }
# Every run's lines go to its log and, prefixed, to stdout.
run_logged() { local name=$1; shift; "$@" 2>&1 | tee "$LOGS/$name.log" | sed -u "s/^/[$name] /"; }
finish() {
  log "stage $STAGE ended after $((SECONDS - t0)) s"
  for f in "$LOGS"/*.log; do echo "== $(basename "$f")"; cat "$f"; done >"$OUT/run.log"
}
trap finish EXIT
log "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
log "$("$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1)"
[ -f "$CSV" ] || run_logged unpack "$PY" scripts/pack_data.py unpack "$DEV/fer2013.pack" "$CSV" || exit 1
# Parse once, so the parallel runs below all read the parsed-data cache.
"$PY" -c "from fer_edge.data import load_dataset as l; l('$CSV'); l('$CSV', dataset='ferplus', votes='$VOTES')" || exit 1
log "data ready after $((SECONDS - t0)) s"

ds_args() { [ "$1" = ferplus ] && echo "--dataset ferplus --votes $VOTES"; }

teachers() {
  for ds in fer2013 ferplus; do
    # shellcheck disable=SC2046,SC2086
    run_logged "t_$ds" timeout -k 30 $((TEACHER_BUDGET + 90)) "$PY" scripts/train_teachers.py --data "$CSV" \
      $(ds_args $ds) --out "$OUT/t_$ds" --members "$MEMBERS" --epochs "$TEACHER_EPOCHS" \
      --time-budget "$TEACHER_BUDGET" --device "$DEVICE" $EXTRA &
  done
  wait
  log "teachers done after $((SECONDS - t0)) s"
}

students() {
  local teacher_dir=$1
  for ds in fer2013 ferplus; do
    recipe="--lr 0.1 --seed 0"
    [ "$ds" = fer2013 ] && recipe="--lr 0.1 --seed 2 --dropout 0.3 --erase 0.6"  # the shipped recipe
    # shellcheck disable=SC2046,SC2086
    run_logged "s_$ds" timeout -k 30 $((STUDENT_BUDGET + 60)) "$PY" -m fer_edge train --data "$CSV" \
      $(ds_args $ds) --out "/tmp/s_$ds" --teacher "$teacher_dir/teachers_$ds.npz" --kd-temperature "$KD_T" \
      --kd-weight "$KD_A" --epochs "$STUDENT_EPOCHS" --batch-size 128 $recipe --time-budget "$STUDENT_BUDGET" \
      --device "$DEVICE" $EXTRA &
  done
  wait
  for ds in fer2013 ferplus; do
    # best.pt (15 MB, its history inside) comes back; last.pt (optimizer state, 46 MB) stays.
    mkdir -p "$OUT/s_$ds" && cp "/tmp/s_$ds/best.pt" "$OUT/s_$ds/" || log "no best.pt for $ds"
  done
  log "students done after $((SECONDS - t0)) s"
}

case $STAGE in
teachers) teachers ;;
students) students "$DEV" ;;
all)
  teachers
  mkdir -p /tmp/teachers
  for ds in fer2013 ferplus; do cp "$OUT/t_$ds/teachers.npz" "/tmp/teachers/teachers_$ds.npz" || exit 1; done
  students /tmp/teachers
  ;;
*) echo "unknown stage $STAGE; choose teachers, students or all" >&2; exit 2 ;;
esac
