#!/usr/bin/env bash
# The quality table at the paper's settings (input 518, BitFit, bf16 on CUDA) on one GPU.
#
#   bench/paper_settings.sh DATA_DIR OUT_DIR [EPOCHS] [WEIGHTS] [BUDGET_S]
#
# DATA_DIR holds dataset folders (images/, masks/, dataset.json), e.g. ../shared/data with
# magnetic_tile and crackforest. WEIGHTS: the backbone source (default "offline"; a path to a
# timm-layout safetensors file works offline). A table's rows are split between parallel
# processes (one GPU has room for several students at once, and the data pipeline is on the
# CPU), then merged per dataset into OUT_DIR/<dataset>/quality.{json,md}. Every process stops
# at BUDGET_S seconds (default 1800); rows finished by then are kept. DEVICE and INPUT_SIZE
# (environment) override cuda and 518 for a trial run.
set -u
data=${1:?DATA_DIR}; out=${2:?OUT_DIR}; epochs=${3:-50}; weights=${4:-offline}
budget=${5:-1800}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} PYTHONUNBUFFERED=1
mkdir -p "$out"

common=(--input-size "${INPUT_SIZE:-518}" --mode bitfit --device "${DEVICE:-cuda}" --epochs "$epochs"
        --backbone-weights "$weights")
# (rows from GrabCut | rows from box fill): the most telling rows first in each process
parts=("b2p,b2p -selfcorr|"
       "unet,unet+b2p loss|"
       "b2p raw tau,b2p -detail,b2p -binary|"
       "b2p oracle,b2p frozen|b2p")
pids=()
for ds in "$data"/*/; do
  name=$(basename "$ds")
  [ -d "$ds/masks" ] || continue
  i=0
  for p in "${parts[@]}"; do
    gc=${p%%|*}; bx=${p#*|}
    teachers=grabcut; rows=$gc; other=$bx
    [ -z "$gc" ] && { teachers=box; rows=$bx; other=""; }
    [ -n "$gc" ] && [ -n "$bx" ] && teachers=grabcut,box
    timeout "$budget" "$py" "$here/quality.py" --data "$ds" --out "$out/$name.$i" \
      --teachers "$teachers" --rows "$rows" --other-rows "$other" "${common[@]}" \
      > "$out/$name.$i.log" 2>&1 &
    pids+=($!)
    i=$((i + 1))
  done
done
wait "${pids[@]}"
for ds in "$data"/*/; do
  name=$(basename "$ds")
  [ -d "$ds/masks" ] || continue
  "$py" "$here/merge_quality.py" "$out/$name" "$out/$name".[0-9]* || true
done
