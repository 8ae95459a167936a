"""``b2p gui [PROJECT]`` opens the desktop app; the hidden ``b2p worker`` runs a training job and
``b2p plan-worker`` the budget planner (how the frozen app, which has no ``python -m``, starts
``app.workers.train`` and ``app.workers.plan``)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("gui", help="open the desktop app (napari)",
                       description="Open the Boxes2Pixels Inspector desktop app.")
    p.add_argument("project", nargs="?", default=None,
                   help="project folder, or a folder of photos to make one from "
                        "(default: the last project opened)")
    p.set_defaults(func=_gui)
    for name, module in (("worker", "train"), ("plan-worker", "plan")):
        # every word after the name, --help included, is the worker's own (main() passes
        # them on as typed: argparse's REMAINDER would refuse a leading option)
        w = sub.add_parser(name, add_help=False)
        w.set_defaults(func=_worker, worker=module, passthrough=True)
        _hide(sub, name)


def _hide(sub, name: str) -> None:
    """Drop a subcommand from the help listing (it still parses)."""
    sub._choices_actions[:] = [a for a in sub._choices_actions if a.dest != name]


def _gui(args: argparse.Namespace) -> int:
    from app.gui import launch

    return launch(args.project)


def _worker(args: argparse.Namespace) -> int:
    if args.worker == "plan":
        from app.workers.plan import main
    else:
        from app.workers.train import main
    return main(args.argv)
