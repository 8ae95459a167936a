"""Boxes2Pixels Inspector application layer: the command line (``app.cli``) and the GUI."""

__version__ = "0.1.0"
