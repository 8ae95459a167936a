#!/usr/bin/env bash
# Smoke test of the SHIPPED bundle (make package-test): every step runs dist/boxes2pixels in a
# clean environment (env -i: only HOME, PATH=/usr/bin:/bin, DISPLAY; no venv, no PYTHONPATH).
# Prints each step's time and the bundle size; exits non-zero on the first failure, naming it.
#
#   bash packaging/smoke.sh [BUNDLE_DIR]     (default: dist/boxes2pixels)
# Env: SMOKE_WORK=DIR keeps the scratch folder (default: a temp dir, removed on success).
#      SMOKE_SHOT=FILE also copies the GUI screenshot there (it is in $SMOKE_WORK/gui.png).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="$(cd "${1:-$ROOT/dist/boxes2pixels}" 2>/dev/null && pwd)" || {
    echo "smoke: FAILED at step 'bundle': no bundle at ${1:-$ROOT/dist/boxes2pixels}" >&2; exit 1; }
EXE="$BUNDLE/boxes2pixels"
WORK="${SMOKE_WORK:-$(mktemp -d /tmp/b2p-smoke.XXXXXX)}"
mkdir -p "$WORK/home"
LOG="$WORK/log"
mkdir -p "$LOG"
XVFB_PID=""
DISPLAY_NUM=""

cleanup() { [ -n "$XVFB_PID" ] && kill "$XVFB_PID" 2>/dev/null; }
trap cleanup EXIT

fail() {  # fail STEP MESSAGE
    echo "smoke: FAILED at step '$1': $2" >&2
    [ -f "$LOG/$1.log" ] && { echo "--- last lines of $LOG/$1.log" >&2; tail -n 25 "$LOG/$1.log" >&2; }
    exit 1
}

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# The bundle, run as a field laptop would: nothing from this shell's environment leaks in.
clean() { env -i HOME="$WORK/home" PATH=/usr/bin:/bin DISPLAY="${DISPLAY_NUM:-:0}" "$EXE" "$@"; }

step() {  # step NAME CMD...: run, time, log; stop the script on failure
    local name="$1"; shift
    local t0; t0=$(now)
    "$@" >"$LOG/$name.log" 2>&1
    local rc=$?
    [ "$rc" -eq 0 ] || fail "$name" "exit code $rc after $(secs "$t0" "$(now)") s"
    printf 'smoke: %-14s ok  %6s s\n' "$name" "$(secs "$t0" "$(now)")"
}

[ -x "$EXE" ] || fail bundle "$EXE is missing or not executable"
echo "smoke: bundle $BUNDLE ($(du -sh "$BUNDLE" | cut -f1)), scratch $WORK"

P="$WORK/project"
TINY='{"arch": "b2p", "input_size": 56, "backbone_weights": "none", "decoder_channels": 32, "taps": [0, 1]}'
TRAIN='{"epochs": 2, "batch_size": 2, "device": "cpu", "num_workers": 0, "val_fraction": 0.25}'

version() { clean --version | tee /dev/stderr | grep -q "b2p "; }
step version version
step synth clean synth "$WORK/synth" --n 4 --size 112 --seed 3
step init clean init "$P" --images "$WORK/synth/images"
step import clean import "$P" --yolo "$WORK/synth/labels"
step pseudo-label clean pseudo-label "$P"  # the default teacher, auto
step weights-list clean weights list

# The budget planner as the GUI runs it: the bundle in plan-worker mode, a JSON plan per budget.
plan_worker() {
    clean plan-worker "$P" --budget 10m --student "$TINY" --train "$TRAIN" > "$LOG/plan.jsonl"
}
step plan-worker plan_worker
grep -q '"mode"' "$LOG/plan.jsonl" || fail plan-worker "no plan from the planner"

# Training exactly as the GUI runs it: the bundle re-launched in worker mode, JSON on stdout.
train_worker() {
    clean worker "$P" --out "$P/models/smoke" --student "$TINY" --train "$TRAIN" \
        > "$LOG/worker.jsonl"
}
step train-worker train_worker
grep -q '"event": "done"' "$LOG/worker.jsonl" || fail train-worker "no 'done' event from the worker"
[ -s "$P/models/smoke/model.safetensors" ] || fail train-worker "no model.safetensors written"
step predict clean predict "$P" --model "$P/models/smoke" --device cpu
step export-coco clean export "$P" --format coco --source student --out "$WORK/coco.json"
[ -s "$WORK/coco.json" ] || fail export-coco "no COCO file written"
step report clean report "$P" --out "$WORK/report"
[ -s "$WORK/report/report.html" ] || fail report "no report.html written"

# The GUI under Xvfb on that project: first window, screenshot, clean quit (exit code 0).
start_xvfb() {
    local n
    for n in $(seq 91 120); do
        [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ] && continue
        Xvfb ":$n" -screen 0 1600x1000x24 -nolisten tcp >"$LOG/xvfb.log" 2>&1 &
        XVFB_PID=$!
        for _ in $(seq 50); do
            [ -e "/tmp/.X11-unix/X$n" ] && { DISPLAY_NUM=":$n"; return 0; }
            sleep 0.1
        done
        kill "$XVFB_PID" 2>/dev/null; XVFB_PID=""
    done
    return 1
}
command -v Xvfb >/dev/null || fail xvfb "Xvfb is not installed (apt-get install xvfb)"
start_xvfb || fail xvfb "could not start Xvfb"

SHOT="$WORK/gui.png"
gui() {
    local t0 line first=""
    t0=$(now)
    # B2P_SMOKE_SHOT turns on packaging/smoke_gui.py inside the bundle (screenshot, then quit)
    env -i HOME="$WORK/home" PATH=/usr/bin:/bin DISPLAY="$DISPLAY_NUM" B2P_SMOKE_SHOT="$SHOT" \
        timeout 180 "$EXE" gui "$P" > >(while IFS= read -r line; do
            echo "$line"
            [[ "$line" == "smoke: window shown"* ]] && echo "first window after $(secs "$t0" "$(now)") s"
        done) 2>&1
    local rc=$?
    sleep 0.2  # let the reader above print its last line
    return $rc
}
step gui gui
grep -q "first window after" "$LOG/gui.log" || fail gui "the window never showed"
grep -q "smoke: screenshot" "$LOG/gui.log" || fail gui "no screenshot taken"
[ -s "$SHOT" ] || fail gui "screenshot file missing"
grep -h "first window after" "$LOG/gui.log" | sed 's/^/smoke: /'
if [ -n "${SMOKE_SHOT:-}" ]; then cp "$SHOT" "$SMOKE_SHOT"; fi

echo "smoke: bundle size $(du -sh "$BUNDLE" | cut -f1); screenshot ${SMOKE_SHOT:-$SHOT}"
echo "smoke: all steps passed"
[ -z "${SMOKE_WORK:-}" ] && rm -rf "$WORK"  # kept (with its logs) after a failure
exit 0
