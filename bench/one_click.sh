#!/usr/bin/env bash
# Section 1's headline table: the path a user takes with the defaults, on one data set.
#
#   bench/one_click.sh DATA OUT [BUDGET]
#
# DATA holds images/, masks/ (class-id PNGs) and dataset.json. The boxes are the masks'
# connected components padded by 2 px (as bench/quality.py), imported with `b2p import
# --masks`; then `b2p pseudo-label` (default teacher), `b2p train --budget BUDGET` (10m)
# and `b2p predict --no-fallback`, each timed, and every boxed photo is scored against the
# ground truth: the teacher's masks, the student's, and the filled boxes (`b2p pseudo-label
# --teacher box` into a copy of the project). Everything goes under OUT; OUT/summary.txt holds
# the commands, their times and the scores. FROM=train (environment) reuses OUT's project and
# pseudo-masks and starts at the training.
#
# HALF=1 (environment): section 2's box-free protocol. Only every other photo (sorted by name)
# is boxed; the rest are predicted with no boxes and scored box-free (`b2p eval --photos
# unboxed`: pixel scores and region recall / precision), beside the boxed half's rows.
# PLAN="--mode frozen --input-size 336 --epochs 12" (environment): train with these settings
# instead of `--budget`, e.g. another run's plan, so two runs that differ in one step train alike.
# HALF=2: the other fold (every other photo from the second on is boxed), for a second student
# scored on the photos the first one was trained on.
set -eu
data=${1:?DATA}; out=${2:?OUT}; budget=${3:-10m}
b2p="${PYTHON:-python3} -m app.cli"
mkdir -p "$out"
log="$out/summary.txt"
run() {  # run a command, log it with its wall time
  local t0=$(date +%s)
  echo "\$ $*" | tee -a "$log"
  "$@" > "$out/step.$(date +%s%N).log" 2>&1
  echo "  ($(( $(date +%s) - t0 )) s)" | tee -a "$log"
}
proj="$out/project"
if [ "${FROM:-}" != train ]; then
  : > "$log"
  rm -rf "$proj" "$out/boxfill"
  classes=$(${PYTHON:-python3} -c "import json,sys; print(','.join(json.load(open(sys.argv[1]))['classes'][1:]))" "$data/dataset.json")
  run $b2p init "$proj" --images "$data/images" --classes "$classes"
  masks="$data/masks"
  if [ -n "${HALF:-}" ]; then  # links to every other mask: the boxed half
    masks="$out/boxed_masks"; rm -rf "$masks"; mkdir -p "$masks"
    ls "$data/masks" | sort | awk -v fold="${HALF}" 'NR % 2 == fold % 2' | while read -r f; do
      ln -s "$(cd "$data/masks" && pwd)/$f" "$masks/$f"; done
  fi
  run $b2p import "$proj" --masks "$masks" --pad 2
  cp -r "$proj" "$out/boxfill"
  run $b2p pseudo-label "$proj"
fi
# shellcheck disable=SC2086  # PLAN is a list of options
run $b2p train "$proj" --out "$proj/models/student" ${PLAN:---budget "$budget"}
run $b2p predict "$proj" --model "$proj/models/student" --no-fallback
run $b2p pseudo-label "$out/boxfill" --teacher box
rows="boxfill:teacher:boxed project:teacher:boxed project:student:boxed"
[ -n "${HALF:-}" ] && rows="$rows project:student:unboxed"
for what in $rows; do
  IFS=: read -r p s photos <<< "$what"
  f="$out/eval_${p}_${s}_$photos.json"
  $b2p eval "$out/$p" --gt "$data/masks" --source "$s" --photos "$photos" --out "$f" > /dev/null
  ${PYTHON:-python3} -c "import json,sys; s=json.load(open(sys.argv[1])); print(f'{sys.argv[2]:26s} {s[\"images\"]:4d} photos  binary IoU {s[\"binary_iou\"]:.3f} recall {s[\"binary_recall\"]:.3f} precision {s[\"binary_precision\"]:.3f} anomaly mIoU {s[\"anomaly_miou\"]:.3f}  regions found {s[\"region_recall\"]:.3f} of {s[\"true_regions\"]}, on a defect {s[\"region_precision\"]:.3f} of {s[\"predicted_regions\"]}')" "$f" "$p/$s ($photos)" | tee -a "$log"
done
# the student against each naive row on the same photos, with the spread the photos give
for naive in "boxfill_teacher:the filled boxes" "project_teacher:its teacher"; do
  IFS=: read -r f label <<< "$naive"
  ${PYTHON:-python3} "$(dirname "$0")/compare_eval.py" "$out/eval_${f}_boxed.json" \
    "$out/eval_project_student_boxed.json" --label "student - $label" | tee -a "$log"
done
