"""Is one scoring better than another on the same photos, or did the photos decide?

    python bench/compare_eval.py BEFORE.json AFTER.json [--label TEXT]

BEFORE and AFTER are `b2p eval --out` files of the same photos (two models, or a teacher and its
student). Prints AFTER's pooled binary IoU minus BEFORE's, in points, with a 95 % paired
bootstrap interval over the photos both scored (:mod:`ml.evaluation.paired`): the spread that
comes from which photos happened to be scored, not from another training seed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.evaluation.paired import paired_difference  # noqa: E402


def per_photo(path: Path) -> dict[str, list[int]]:
    data = json.loads(path.read_text())
    if not data.get("per_photo"):
        raise SystemExit(f"{path}: no per-photo counts (written by a `b2p eval` before they "
                         f"were kept; score it again)")
    return data["per_photo"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--label", help="what the line compares (default: the two file names)")
    a = ap.parse_args(argv)
    d = paired_difference(per_photo(a.before), per_photo(a.after))
    label = a.label or f"{a.after.stem} - {a.before.stem}"
    print(d.sentence(label))
    return 0


if __name__ == "__main__":
    sys.exit(main())
