"""What the background bank costs: building it, and box-free prediction with it against without.

On a trained project (a half-boxed one of ``bench/one_click.sh`` or ``bench/review_loop.py``):
builds the model's bank from its training photos as calibration does (not saved), then
predicts the photos without boxes box-free twice in the same process, with the bank and
without (the baseline), and prints the times, their ratio and the machine.

    python bench/novelty.py PROJECT --model PROJECT/models/student [--photos 30]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _machine import cpu_name, load_average  # noqa: E402

from ml.prediction.novelty_build import bank_keys, bank_rows  # noqa: E402
from ml.prediction.predict import Predictor  # noqa: E402
from ml.project.store import Project  # noqa: E402
from ml.student.novelty import build_bank  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("project", type=Path)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--photos", type=int, default=30, help="unboxed photos to predict")
    a = ap.parse_args(argv)
    proj = Project.open(a.project)
    pred = Predictor.from_dir(a.model, "cpu", novelty=None)
    keys = bank_keys(proj)
    t0 = time.perf_counter()
    rows = bank_rows(proj, pred, keys)
    t_rows = time.perf_counter() - t0
    t0 = time.perf_counter()
    bank = build_bank(rows)
    t_coreset = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_bank(rows, select="random")  # the baseline: round 29's random draw
    t_random = time.perf_counter() - t0
    t_bank = t_rows + t_coreset
    if bank is None:
        print("no bank: fewer than two boxed training photos with background")
        return 1
    free = [k for k in proj.keys() if not proj.record(k).boxes][:a.photos]
    images = [proj.load_image(k) for k in free]
    pred.predict(images[0])  # warm-up: first-call allocations count in neither arm
    times = {}
    for arm in ("without", "with"):
        pred.novelty = bank if arm == "with" else None
        t0 = time.perf_counter()
        for im in images:
            pred.predict(im)
        times[arm] = time.perf_counter() - t0
    n = len(images)
    print(f"bank: {len(bank.features)} patches of {bank.photos} photos ({len(keys)} asked), "
          f"built in {t_bank:.1f} s ({t_bank / max(len(keys), 1):.2f} s a photo), "
          f"{bank.features.nbytes / 2**20:.1f} MB")
    print(f"of which the patches' features {t_rows:.1f} s, picking the bank {t_coreset:.1f} s "
          f"as a coreset of {sum(len(r) for r in rows)} patches against {t_random:.2f} s as a "
          f"random draw: x{t_coreset / max(t_random, 1e-9):.0f}")
    print(f"box-free prediction of {n} photos: {times['without']:.1f} s without the bank, "
          f"{times['with']:.1f} s with it: x{times['with'] / times['without']:.2f} "
          f"({1000 * (times['with'] - times['without']) / max(n, 1):.0f} ms a photo)")
    print(f"machine: {cpu_name()}, load {load_average():.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
