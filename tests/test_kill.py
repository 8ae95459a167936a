"""Killed mid-write: a process SIGKILLed while saving loses only the write in flight.

Each test runs a child Python that writes in a loop and logs ``start KIND KEY N`` before and
``done KIND KEY N`` after every write, then kills it at a random moment. What is on disk must
then be, for every (kind, key), either the last finished write or the one in flight.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ml.project.db import check_file
from ml.project.store import DB_NAME, Project

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
REPO = Path(__file__).resolve().parents[1]
KILLS = 5

# Store writes: boxes (project.json), a teacher mask, a student prediction with its maps.
# N counts up from what is on disk; a mask of write N has its first N pixels set to 1.
STORE_CHILD = """
import sys
import numpy as np
from ml.project.store import Box, Project

p = Project.open(sys.argv[1])
log = open(sys.argv[2], "a", buffering=1)

def count(label):
    return 0 if label is None else int((label == 1).sum())

def label(key, n):
    rec = p.record(key)
    lab = np.zeros((rec.height, rec.width), np.uint8)
    lab.flat[:n] = 1
    return lab

def write(kind, key, n, fn):
    log.write(f"start {kind} {key} {n}\\n")
    fn()
    log.write(f"done {kind} {key} {n}\\n")

log.write("ready\\n")
while True:
    for key in p.keys():
        size = p.record(key).width * p.record(key).height
        n = len(p.record(key).boxes) + 1
        write("boxes", key, n, lambda: p.set_boxes(key, [Box(0, 0, 2, 2, 1)] * n))
        n = count(p.load_mask(key, "teacher")) % size + 1
        write("teacher", key, n, lambda: p.save_teacher_mask(key, label(key, n), "t", force=True))
        n = count(p.load_mask(key, "student")) % size + 1
        write("student", key, n, lambda: p.save_student(
            key, label(key, n), "m", confidence=np.full_like(label(key, n), n % 256),
            corrections=label(key, n)))
"""

# The GUI's autosave (app/gui/_session.py): box edits saved on the calling thread, paint strokes
# through Project.save_edited_mask on a one-thread pool, both at once.
AUTOSAVE_CHILD = """
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
import numpy as np
from ml.project.store import Box, Project

p = Project.open(sys.argv[1])
log = open(sys.argv[2], "a", buffering=1)
pool = ThreadPoolExecutor(max_workers=1)
lock = threading.Lock()

def note(line):
    with lock:  # two threads log: keep lines whole
        log.write(line + "\\n")

def count(label):
    return 0 if label is None else int((label == 1).sum())

def paint(key, n):
    rec = p.record(key)
    lab = np.zeros((rec.height, rec.width), np.uint8)
    lab.flat[:n] = 1
    note(f"start edited {key} {n}")
    p.save_edited_mask(key, lab)
    note(f"done edited {key} {n}")

note("ready")
strokes = {k: count(p.load_mask(k, "teacher")) for k in p.keys()}
while True:
    pending = []
    for key in p.keys():
        rec = p.record(key)
        strokes[key] = strokes[key] % (rec.width * rec.height) + 1
        pending.append(pool.submit(paint, key, strokes[key]))
        n = len(rec.boxes) + 1
        note(f"start boxes {key} {n}")
        p.set_boxes(key, [Box(0, 0, 2, 2, 1)] * n)
        note(f"done boxes {key} {n}")
    for f in pending:
        f.result()
"""

# A checkpoint of a tiny module: weights, card and training state of write N all hold N.
CHECKPOINT_CHILD = """
import sys
import torch
from ml.student.checkpoint import load_train_state, save_checkpoint
from ml.student.config import ModelCard

torch.set_num_threads(1)
out, log = sys.argv[1], open(sys.argv[2], "a", buffering=1)
state = load_train_state(out)
n = 0 if state is None else state["n"]
model = torch.nn.Linear(64, 64)


def save(n):
    with torch.no_grad():
        model.weight.fill_(n)
    log.write(f"start ckpt last {n}\\n")
    save_checkpoint(out, model, ModelCard(epoch=n), optimizer_state={"step": n},
                    extra_state={"n": n, "pad": torch.zeros(20000)})
    log.write(f"done ckpt last {n}\\n")


n += 1
save(n)  # one whole save before the kills start: its first run also loads what it imports
log.write("ready\\n")
while True:
    n += 1
    save(n)
"""


def _run_and_kill(code: str, target: Path, log: Path, rng: random.Random) -> list[str]:
    """Start the child on ``target``, SIGKILL it at a random moment; return its new log lines."""
    before = len(log.read_text().splitlines()) if log.exists() else 0
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code, str(target), str(log)], env=env,
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 60
        while "ready" not in (log.read_text() if log.exists() else "").splitlines()[before:]:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < end, "the child never started writing"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 0.3))
        assert proc.poll() is None, proc.stderr.read().decode()
    finally:
        proc.kill()  # SIGKILL: no handler, no cleanup, no flush
        proc.wait()
        proc.stderr.close()
    return log.read_text().splitlines()[before:]


def _allowed(lines: list[str], before: dict) -> dict:
    """Per (kind, key): the values the disk may hold, the last finished write or the one in
    flight (the value from before this run where nothing finished)."""
    allowed = {k: set(v) for k, v in before.items()}
    for line in lines:
        parts = line.split()
        if len(parts) != 4:  # "ready"
            continue
        what, kind, key, n = parts
        slot = allowed.setdefault((kind, key), {None})
        if what == "start":
            slot.add(int(n))
        else:
            allowed[(kind, key)] = {int(n)}
    return allowed


def _ones(label: np.ndarray | None) -> int | None:
    return None if label is None else int((label == 1).sum())


def _on_disk(proj: Project) -> dict:
    """What the reopened project holds, in the children's terms; every referenced mask loads."""
    seen = {}
    for key in proj.keys():
        rec = proj.record(key)
        seen[("boxes", key)] = len(rec.boxes) or None
        for kind in ("teacher", "student"):
            mask = proj.load_mask(key, kind)
            assert mask is None or mask.shape == (rec.height, rec.width)
            seen[(kind, key)] = _ones(mask)
        seen[("edited", key)] = seen[("teacher", key)]
        for what in ("confidence", "corrections"):
            extra = proj.load_student_extra(key, what)
            assert (extra is None) == (rec.student is None or what not in rec.student.extra)
    return seen


def _temps(root: Path) -> list[Path]:
    return sorted(root.rglob(".*.tmp"))


def _age(paths: list[Path]) -> None:
    old = time.time() - 3600
    for p in paths:
        os.utime(p, (old, old))


@pytest.mark.parametrize("child", [STORE_CHILD, AUTOSAVE_CHILD], ids=["store", "autosave"])
def test_project_killed_mid_write_loses_only_that_write(project, tmp_path, child):
    rng = random.Random(7)
    keys = set(project.keys())
    log = tmp_path / "writes.log"
    before: dict = {}
    for _ in range(KILLS):
        lines = _run_and_kill(child, project.root, log, rng)
        allowed = _allowed(lines, before)
        again = Project.open(project.root)
        assert set(again.keys()) == keys  # no temp file was taken for a photo
        seen = _on_disk(again)
        for slot, values in allowed.items():
            assert seen[slot] in values, (slot, seen[slot], values)
        assert check_file(project.root / DB_NAME) is None  # whole, never cut short
        before = {slot: {seen[slot]} for slot in allowed}
    # leftovers of killed writes are cleared once surely no writer owns them any more
    _age(_temps(project.root))
    Project.open(project.root)
    assert _temps(project.root) == []


def test_checkpoint_killed_mid_save_keeps_a_loadable_one(tmp_path):
    import torch
    from safetensors.torch import load_file

    from ml.student.checkpoint import TRAIN_STATE_NAME, load_train_state, save_checkpoint
    from ml.student.config import ModelCard

    rng = random.Random(11)
    out, log = tmp_path / "last", tmp_path / "writes.log"
    before: dict = {}
    for _ in range(3):
        lines = _run_and_kill(CHECKPOINT_CHILD, out, log, rng)
        allowed = _allowed(lines, before)[("ckpt", "last")]
        weights = load_file(str(out / "model.safetensors"))["weight"]
        n_weights = int(weights[0, 0])
        assert torch.equal(weights, torch.full_like(weights, n_weights))
        state = load_train_state(out)
        assert state["optimizer"] == {"step": state["n"]}
        # each file is the last finished write or the one in flight, never a torn one
        assert {n_weights, ModelCard.load(out / "config.json").epoch, state["n"]} <= allowed
        before = {("ckpt", "last"): {state["n"]}}
    names = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert names == {"model.safetensors", "config.json", TRAIN_STATE_NAME}
    # the next save clears what killed saves left behind
    _age(_temps(out))
    save_checkpoint(out, torch.nn.Linear(2, 2), ModelCard(), extra_state={"n": 0})
    assert _temps(out) == []


def test_open_clears_leftovers_of_killed_writes_but_not_a_write_in_flight(project):
    root = project.root
    masks = root / "masks"
    stale = [root / ".project.json.k1ll3d00.tmp", masks / "teacher" / ".a.png.k1ll3d00.tmp",
             masks / "student" / ".a_conf.png.k1ll3d00.tmp",
             masks / "teacher" / "T01" / "A" / ".c.png.png.k1ll3d00.tmp"]  # masks mirror folders
    in_flight = root / ".project.json.wr1t1ng0.tmp"  # another process (GUI or worker) saving now
    not_ours = root / ".notes.tmp"  # the project folder may be the photo folder: not ours
    for p in [*stale, in_flight, not_ours]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b'{"half a')
    _age([*stale, not_ours])
    Project.open(root)
    assert [p for p in stale if p.exists()] == []
    assert in_flight.exists() and not_ours.exists()


def test_checkpoint_save_clears_leftovers_of_a_killed_save(tmp_path):
    import torch

    from ml.student.checkpoint import save_checkpoint
    from ml.student.config import ModelCard

    out = tmp_path / "last"
    out.mkdir()
    stale = [out / ".model.safetensors.k1ll3d00.tmp", out / ".train_state.pt.k1ll3d00.tmp"]
    for p in stale:
        p.write_bytes(b"\0" * 64)
    _age(stale)
    save_checkpoint(out, torch.nn.Linear(2, 2), ModelCard(), extra_state={"n": 1})
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors",
                                                      "train_state.pt"]


class _Worker:
    """``python -m app.workers.train`` with its JSON-lines stdout read on a thread (no hang on a
    stall)."""

    def __init__(self, *args: str) -> None:
        import queue
        import threading

        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen([sys.executable, "-m", "app.workers.train", *args], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def events(self, timeout_s: float = 120):
        """Events as they come, until the process ends."""
        while (ev := self.lines.get(timeout=timeout_s)) is not None:
            yield ev


def test_worker_killed_mid_epoch_resumes_from_its_last_checkpoint(tmp_path):
    from ml.student.checkpoint import load_train_state
    from tests.test_train import make_project

    proj = make_project(tmp_path, 6)
    out = tmp_path / "model"
    student = {"input_size": 56, "backbone_weights": "none", "decoder_channels": 32,
               "taps": [0, 1]}
    args = [str(proj.root), "--out", str(out), "--student", json.dumps(student), "--threads", "1",
            "--train", json.dumps({"epochs": 3, "batch_size": 4, "device": "cpu",
                                   "patience": 50})]
    first = _Worker(*args)
    try:
        for ev in first.events():
            # a step of epoch 2 or later: epoch 1's checkpoint is written, this epoch is not
            if ev["event"] == "step" and ev["epoch"] >= 2:
                killed_at = ev["step"]
                first.proc.kill()
                break
        else:
            pytest.fail("the worker ended before its second epoch")
    finally:
        first.proc.kill()
        first.proc.wait()
    state = load_train_state(out / "last")
    saved_epoch, saved_step = state["epoch"], state["global_step"]
    assert 1 <= saved_epoch < 3 and saved_step < killed_at
    second = _Worker(*args, "--resume")
    events = list(second.events())
    assert second.proc.wait(timeout=60) == 0
    steps = [e for e in events if e["event"] == "step"]
    assert steps[0]["epoch"] == saved_epoch + 1 and steps[0]["step"] == saved_step + 1
    done = events[-1]
    assert done["event"] == "done" and not done["result"]["stopped"]
    assert done["result"]["epochs_run"] == 3
    assert [h["epoch"] for h in done["result"]["history"]] == [1, 2, 3]
