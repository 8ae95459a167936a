#!/usr/bin/env bash
# On one GPU, in about ten minutes: throughput, then the quality table at the paper's settings
# (input 518, BitFit, bf16 on CUDA) with box-constrained and box-free rows.
#
#   bench/paper_settings.sh DATA_DIR OUT_DIR [EPOCHS] [WEIGHTS] [BUDGET_S]
#
# 1. Throughput (bench/throughput.py, about 2 min): student inference images/s at 518 px in
#    bf16 batched 16/32/64 (issue 28's goal: >= 1000 img/s), the training step's images/s on
#    518 px crops, and tiled 45 MP photos per minute through the product's tiled path.
#    OUT_DIR/throughput.md.
# 2. Quality: DATA_DIR holds dataset folders (images/, masks/, dataset.json), e.g.
#    ../shared/data with magnetic_tile and crackforest. WEIGHTS: the backbone source (default
#    "offline"; a path to a timm-layout safetensors file works offline). A table's rows are
#    split between parallel processes (one GPU has room for several students at once, and the
#    data pipeline is on the CPU), then merged per dataset into OUT_DIR/<dataset>/quality.{json,md};
#    every learned row has its box-free columns (bench/box_free.py: binary IoU, anomaly mIoU,
#    region recall and precision on the held-out photos without boxes). Every process stops at
#    BUDGET_S seconds (default 420, so that the whole script fits in ten minutes with the
#    throughput stage); rows finished by then are kept. TEACHER (environment) is the first
#    teacher (default auto, the product's; the paper's was grabcut). DEVICE and INPUT_SIZE
#    (environment) override cuda and 518 for a trial run; SKIP_THROUGHPUT=1 skips stage 1.
set -u
data=${1:?DATA_DIR}; out=${2:?OUT_DIR}; epochs=${3:-30}; weights=${4:-offline}
budget=${5:-420}
teacher=${TEACHER:-auto}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} PYTHONUNBUFFERED=1
mkdir -p "$out"
if [ "${SKIP_THROUGHPUT:-0}" != 1 ]; then
  timeout 180 "$py" "$here/throughput.py" --device "${DEVICE:-cuda}" --size "${INPUT_SIZE:-518}" \
    --seconds 10 --out "$out/throughput.md" > "$out/throughput.log" 2>&1 || echo "throughput: see $out/throughput.log"
fi

common=(--input-size "${INPUT_SIZE:-518}" --mode bitfit --device "${DEVICE:-cuda}" --epochs "$epochs"
        --backbone-weights "$weights")
# (rows from $teacher | rows from box fill): the most telling rows first in each process
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
    teachers=$teacher; rows=$gc; other=$bx
    [ -z "$gc" ] && { teachers=box; rows=$bx; other=""; }
    [ -n "$gc" ] && [ -n "$bx" ] && teachers=$teacher,box
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
