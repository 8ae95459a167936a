"""The ``b2p`` command line. Each ``_*.py`` module adds its subcommands through ``register``.

Heavy libraries (torch, napari) are imported inside the commands that need them, so
``b2p --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from app import __version__

# Subcommand modules, in help order. Each defines register(subparsers).
_MODULES = ["_project", "_synth", "_pseudo", "_weights", "_train", "_predict", "_export", "_meta",
            "_findings", "_db", "_history", "_review", "_gui"]


class CLIError(Exception):
    """A failure to report as one line on stderr with a non-zero exit code."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="b2p",
        description="Boxes2Pixels Inspector: from boxes to pixel-accurate defect masks.")
    parser.add_argument("--version", action="version", version=f"b2p {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _MODULES:
        importlib.import_module(f"app.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv:  # `b2p` alone opens the GUI
        argv = ["gui"]
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "passthrough", False):  # a hidden worker: it parses its own arguments
        args.argv = argv[argv.index(args.command) + 1:]
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        print("b2p: interrupted; finished work is saved", file=sys.stderr)
        return 130
    except (CLIError, OSError, ValueError, RuntimeError) as e:
        if isinstance(e, OSError):
            from ml.common.atomic import explain_os_error

            e = explain_os_error(e)
        print(f"b2p {args.command}: error: {e}", file=sys.stderr)
        return 1
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
