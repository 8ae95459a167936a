"""`b2p synth`: write a synthetic demo set of blade photos with masks and YOLO boxes."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="write a synthetic demo set (photos, masks, YOLO boxes)")
    p.add_argument("out", type=Path, help="output folder (created if missing)")
    p.add_argument("--n", type=int, default=8, help="number of images (default: 8)")
    p.add_argument("--size", type=int, default=512, metavar="PX",
                   help="image height in pixels; widths vary around it (default: 512)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.set_defaults(func=cmd_synth)


def cmd_synth(args: argparse.Namespace) -> int:
    from app.cli._progress import tqdm_progress
    from ml.datasets.synthetic import write_dataset

    with tqdm_progress("synth") as cb:
        out = write_dataset(args.out, n=args.n, size=args.size, seed=args.seed, progress=cb)
    print(f"wrote {args.n} synthetic images to {out}: images/, masks/ (class ids), "
          f"labels/ (YOLO, 0=dirt 1=damage), dataset.json")
    print(f"try: b2p init PROJECT --images {out / 'images'} && "
          f"b2p import PROJECT --yolo {out / 'labels'}")
    return 0
