"""The project index: the old project.json store against the SQLite database (not a test).

Builds a synthetic campaign (N photos, 3 boxes each, mask records and findings for a tenth; no
photo files are needed for these steps) as a schema-2 ``project.json``, and measures, for the
old store (the code of ``--baseline`` taken from git into a temp folder), for this tree's
SQLite store (the same project migrated on first open) and, with ``--postgres``, for the
same on a PostgreSQL server (``b2p migrate``):

- one edit from the CLI, process start included (``b2p meta P --set turbine=T --where KEY``);
- one edit in process (``Project.set_meta``, median of 20);
- ``b2p status P`` (process start included);
- the GUI's open: ``Project.open`` + every photo's status and box count (the photo list);
- 4 concurrent CLI writers x 15 edits of disjoint photos: how many of the 60 were kept;
- the size of the index on disk.

Each figure is the median of ``--runs`` runs; the machine and its load are printed with them.

    .venv/bin/python bench/store.py [--sizes 1000,20000] [--runs 3] [--baseline e0b2560]
        [--postgres postgresql://USER@HOST:PORT/DB]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

OPEN_LIST = """
import sys, time
t = time.perf_counter()
from ml.project.store import Project
p = Project.open(sys.argv[1])
rows = [(k, r.status, len(r.boxes)) for k, r in p.images.items()]
print(time.perf_counter() - t, len(rows))
"""
EDIT_IN_PROCESS = """
import sys, time, statistics
from ml.project.store import Project
p = Project.open(sys.argv[1])
keys = p.keys()[:20]
times = []
for i, k in enumerate(keys):
    t = time.perf_counter()
    p.set_meta(k, turbine=f"E{i}")
    times.append(time.perf_counter() - t)
print(statistics.median(times))
"""
WRITER = """
import sys
from app.cli import main
root, writer, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
for key in keys:
    assert main(["meta", root, "--set", f"turbine=W{writer}", "--where", key]) == 0
"""
PG_SIZE = """
import sys
from ml.project.store import Project
p = Project.open(sys.argv[1])
print(p.db.q("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
             "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'")
      [0][0])
"""
KEPT = """
import sys, json
from ml.project.store import Project
p = Project.open(sys.argv[1])
want = json.loads(sys.argv[2])
print(sum(p.record(k).meta.get("turbine") == v for k, v in want.items()))
"""


def campaign(root: Path, n: int) -> Path:
    """A schema-2 project.json of ``n`` photos (the form both stores open)."""
    images = {}
    for i in range(n):
        key = f"WTG{i // 600:03d}/blade{i // 200 % 3}/IMG_{i:06d}.JPG"
        rec = {"width": 6000, "height": 4000, "reviewed": False, "meta": {"turbine": f"T{i % 50}"},
               "findings": {}, "teacher": None, "student": None,
               "boxes": [{"xyxy": [100.0 + j * 900, 200.0, 400.0 + j * 900, 520.5],
                          "cls": 1 + j % 2, "source": "imported"} for j in range(3)]}
        if i % 10 == 0:
            rel = f"masks/teacher/{key}.png"
            rec["teacher"] = {"path": rel, "source": "auto", "settings": {"pad": 3},
                              "edited": False, "created": "2026-01-01T00:00:00+00:00",
                              "extra": {"confidence": rel[:-4] + "_conf.png"}}
            rec["findings"] = {"overrides": {"1": {"level": 3, "note": "leading edge erosion",
                                                   "accepted": True, "by": "ann",
                                                   "at": "2026-01-01T00:00:00+00:00"}}}
        images[key] = rec
    (root / "photos").mkdir(parents=True, exist_ok=True)
    data = {"schema": 2, "name": root.name, "created": "2026-01-01T00:00:00+00:00",
            "image_root": "photos", "split": {}, "settings": {},
            "classes": [{"id": 0, "name": "background"}, {"id": 1, "name": "dirt"},
                        {"id": 2, "name": "damage"}], "images": images}
    (root / "project.json").write_text(json.dumps(data))
    return root


def run(tree: Path, *args: str, timeout: float = 900) -> tuple[float, str]:
    """Wall seconds of ``python ARGS`` with ``tree`` first on the path, and its stdout."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    t = time.perf_counter()
    out = subprocess.run([sys.executable, *args], cwd=tree, env=env, capture_output=True,
                         text=True, timeout=timeout)
    took = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"{args}: {out.stderr[-2000:]}")
    return took, out.stdout


def writers(tree: Path, proj: Path, keys: list[str]) -> int:
    """4 concurrent CLI processes x 15 edits of disjoint photos: how many edits were kept."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    chosen = keys[:60]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(proj), str(w), *chosen[w::4]],
                              cwd=tree, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for w in range(4)]
    for p in procs:
        p.wait(timeout=1800)
    want = {k: f"W{i % 4}" for i, k in enumerate(chosen)}
    return int(run(tree, "-c", KEPT, str(proj), json.dumps(want))[1])


def measure(tree: Path, proj: Path, runs: int, concurrent: bool) -> dict:
    keys = sorted(json.loads((proj / "project.json").read_text())["images"])
    out: dict = {}
    med = statistics.median
    out["cli_edit_s"] = med(run(tree, "-m", "app.cli", "meta", str(proj), "--set",
                                f"turbine=X{i}", "--where", keys[i])[0] for i in range(runs))
    out["edit_ms"] = 1000 * med(float(run(tree, "-c", EDIT_IN_PROCESS, str(proj))[1])
                                for _ in range(runs))
    out["status_s"] = med(run(tree, "-m", "app.cli", "status", str(proj))[0]
                          for _ in range(runs))
    out["open_list_s"] = med(float(run(tree, "-c", OPEN_LIST, str(proj))[1].split()[0])
                             for _ in range(runs))
    out["kept_of_60"] = writers(tree, proj, keys[-60:]) if concurrent else None
    if (proj / "project.postgresql").exists():
        out["size_mb"] = int(run(tree, "-c", PG_SIZE, str(proj))[1]) / 1e6
        return out
    files = [proj / n for n in ("project.sqlite", "project.sqlite-wal")]
    if not files[0].exists():
        files = [proj / "project.json"]
    out["size_mb"] = sum(f.stat().st_size for f in files if f.exists()) / 1e6
    return out


def baseline_tree(rev: str, into: Path) -> Path:
    """The code of ``rev`` (the JSON store) extracted from git."""
    into.mkdir(parents=True)
    arch = subprocess.run(["git", "-C", str(REPO), "archive", rev], capture_output=True,
                          check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=arch, check=True)
    return into


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,20000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--baseline", default="e0b2560",
                    help="git revision of the JSON store (default: the last one before it)")
    ap.add_argument("--postgres", metavar="URL",
                    help="also measure the store on this PostgreSQL server (a schema per size)")
    ap.add_argument("--no-old-writers-above", type=int, default=20000,
                    help="skip the old store's concurrent writers above this many photos")
    args = ap.parse_args()
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
          f"python {platform.python_version()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="b2p-store-") as tmp:
        old = baseline_tree(args.baseline, Path(tmp) / "old")
        for n in (int(s) for s in args.sizes.split(",")):
            src = campaign(Path(tmp) / f"src{n}", n)
            stores = [("json", old), ("sqlite", REPO)] + ([("postgresql", REPO)]
                                                          if args.postgres else [])
            for name, tree in stores:
                proj = Path(tmp) / f"{name}{n}"
                subprocess.run(["cp", "-r", str(src), str(proj)], check=True)
                if name != "json":  # the first open migrates project.json (timed apart)
                    mig = run(tree, "-m", "app.cli", "status", str(proj))[0]
                    print(f"{n} photos: migration to SQLite (first open) {mig:.2f} s")
                if name == "postgresql":
                    sep = "&" if "?" in args.postgres else "?"
                    url = f"{args.postgres}{sep}options=-csearch_path%3Dbench{n}_{os.getpid()}"
                    mig = run(tree, "-m", "app.cli", "migrate", str(proj), "--to", url)[0]
                    print(f"{n} photos: b2p migrate to PostgreSQL {mig:.2f} s")
                conc = name != "json" or n <= args.no_old_writers_above
                r = measure(tree, proj, args.runs, conc)
                rows.append((n, name, r))
                print(n, name, json.dumps(r), f"load {os.getloadavg()[0]:.2f}", flush=True)
    print("\n| photos | store | CLI edit (s) | edit in process (ms) | b2p status (s) | "
          "GUI open + list (s) | 4x15 writers kept | size (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for n, name, r in rows:
        kept = "-" if r["kept_of_60"] is None else f"{r['kept_of_60']}/60"
        print(f"| {n:,} | {name} | {r['cli_edit_s']:.2f} | {r['edit_ms']:.2f} | "
              f"{r['status_s']:.2f} | {r['open_list_s']:.2f} | {kept} | {r['size_mb']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
