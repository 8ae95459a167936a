"""Merge quality.json files of runs that split one table's rows between processes.

    python bench/merge_quality.py OUT_DIR RUN_DIR [RUN_DIR ...]

Every run must be of the same dataset and held-out split (``bench/quality.py`` with the same
``--data``, ``--seed`` and ``--test-fraction``); rows are kept in the order given, a row that
two runs share (box fill, the teacher) once. Writes OUT_DIR/quality.json and quality.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import markdown  # noqa: E402


def merge(runs: list[dict]) -> dict:
    """One result from several of the same dataset and split; raises if they differ."""
    first = runs[0]
    rows, seen = [], set()
    for r in runs:
        if (r["dataset"], r["split"]) != (first["dataset"], first["split"]):
            raise ValueError("runs differ in dataset or held-out split; cannot merge")
        for row in r["rows"]:
            key = (row["name"], row.get("teacher"), row.get("mode"))
            if key not in seen:
                seen.add(key)
                rows.append(row)
    return {**first, "rows": rows, "command": " ; ".join(r["command"] for r in runs),
            "seconds": max(r.get("seconds", 0.0) for r in runs)}


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    out, dirs = Path(argv[0]), [Path(a) for a in argv[1:]]
    runs = [json.loads((d / "quality.json").read_text()) for d in dirs
            if (d / "quality.json").exists()]
    if not runs:
        print("no quality.json in the given folders")
        return 1
    result = merge(runs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "quality.json").write_text(json.dumps(result, indent=1))
    (out / "quality.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
