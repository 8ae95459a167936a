"""Scratch: on a project's unboxed photos, what the faint-threshold islands would add as
candidates (before any calibration): how many, their real share, and true regions held."""
import sys
from pathlib import Path
import numpy as np
sys.path.insert(0, "/work/main/bench"); sys.path.insert(0, "/work/main")
import cv2
from review_loop import gt_of, grown, true_regions, MATCH_PX
from ml.project.store import Project
from ml.findings import decisions as DEC
from ml.prediction.predict import Predictor
from ml.prediction.proposals import region_candidates, merge_px_for

proj = Project.open(Path(sys.argv[1])); masks = Path(sys.argv[2]); low = float(sys.argv[3])
pred = Predictor.from_dir(proj.root / "models/student", "cpu")
keys = [k for k in proj.keys() if not DEC.person_boxed(proj, k)]
h, w = gt_of(masks, keys[0]).shape
min_area = max(12, round(3e-4 * h * w))
tot = held_base = held_all = 0; isl = isl_real = base = base_real = 0
for k in keys:
    gt = gt_of(masks, k)
    res = pred.predict(proj.load_image(k), return_probs=True)
    p = res.probs.astype(np.float32)
    faint = (p[1:].argmax(0) + 1).astype(np.uint8); faint[p[0] >= 1 - low] = 0
    reg = res.regions
    k_ = 2 * merge_px_for(reg.shape) + 1
    grownm = cv2.dilate(((faint > 0) | (reg > 0)).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k_, k_)))
    n, comp = cv2.connectedComponents(grownm, connectivity=8)
    strong = np.zeros(n, bool); strong[np.unique(comp[reg > 0])] = True; strong[0] = True
    island = (faint > 0) & ~strong[comp]
    imap = np.where(island, faint, 0).astype(np.uint8)
    near = grown(gt > 0)
    bc = region_candidates(res.label, reg, res.defect)
    ic = region_candidates(res.label, imap, res.defect)
    def full(c):
        m = np.zeros(gt.shape, bool); x0, y0, x1, y1 = c.proposal.box; m[y0:y1, x0:x1] = c.mask; return m
    bm = [full(c) for c in bc]; im = [full(c) for c in ic]
    base += len(bm); base_real += sum(bool((m & near).any()) for m in bm)
    isl += len(im); isl_real += sum(bool((m & near).any()) for m in im)
    anyb = grown(np.any(bm, 0)) if bm else np.zeros(gt.shape, bool)
    anyi = grown(np.any(im, 0)) if im else np.zeros(gt.shape, bool)
    for t in true_regions(gt, min_area):
        tot += 1; held_base += bool((t & anyb).any()); held_all += bool((t & (anyb | anyi)).any())
print(f"{sys.argv[1]} faint {low}: unboxed photos {len(keys)}, true regions {tot}")
print(f"candidates at the proposal threshold: {base} ({base_real} real), hold {held_base/tot:.3f}")
print(f"islands: {isl} ({isl_real} real), with them candidates hold {held_all/tot:.3f}")
