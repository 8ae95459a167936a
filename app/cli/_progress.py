"""tqdm bars and Ctrl-C for the library's progress callbacks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ml.progress import Progress, ProgressFn


@contextmanager
def tqdm_progress(desc: str, unit: str = "img") -> Iterator[ProgressFn]:
    """A progress callback drawing a tqdm bar; the total is taken from the first event."""
    from tqdm import tqdm

    bar: list[tqdm] = []

    def update(p: Progress) -> None:
        if not bar:
            bar.append(tqdm(total=p.total, desc=desc, unit=unit, dynamic_ncols=True))
        b = bar[0]
        if b.total != p.total:
            b.total = p.total
        b.n = p.done
        post = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in p.extra.items()
                if isinstance(v, (int, float, str))}
        if p.message:
            post["msg"] = p.message[:40]
        b.set_postfix(post, refresh=False)
        b.refresh()

    try:
        yield update
    finally:
        if bar:
            bar[0].close()
