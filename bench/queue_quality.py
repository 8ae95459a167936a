"""Section 4 of the review-loop issue on a trained project: are the queue's proposals worth a
person's time?

The project's unboxed photos must hold the proposals `b2p predict` stored (for instance the
box-free half of `HALF=1 bench/one_click.sh`). Against the ground truth it prints the share of
the queue's first 100 proposals that lie within 3 px of a true defect (goal >= 0.8) and the
share of the unboxed photos' true defects that some proposal of the queue holds (goal >= 0.85),
with the same rules as bench/review_loop.py.

    python bench/queue_quality.py /tmp/oc/cf_half/project --gt ../shared/data/crackforest/masks
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from review_loop import gt_of, queue_quality  # noqa: E402

from ml.project.store import Project  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("project", type=Path)
    ap.add_argument("--gt", type=Path, required=True, help="folder of class-id mask PNGs")
    ap.add_argument("--out", type=Path, help="write the figures here as JSON")
    a = ap.parse_args(argv)
    proj = Project.open(a.project)
    h, w = gt_of(a.gt, proj.keys()[0]).shape  # bench/review_loop.py's smallest true region
    result = {"project": str(a.project), **queue_quality(proj, a.gt, max(12, round(3e-4 * h * w)))}
    print(json.dumps(result, indent=1))
    if a.out:
        a.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
