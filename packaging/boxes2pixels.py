"""Entry point of the frozen app: no arguments open the GUI, arguments run the ``b2p`` CLI.

The bundle has one executable. The GUI re-launches it as ``boxes2pixels worker ...`` for
training (see ``app.gui.training.process.worker_command``): a frozen app has no ``python -m``.
"""

import multiprocessing
import os
import sys

from app.cli import main

if __name__ == "__main__":
    # A child started by multiprocessing's spawn method re-runs this executable; freeze_support
    # turns it into the child instead of a second app (a no-op outside such children).
    multiprocessing.freeze_support()
    if os.environ.get("B2P_SMOKE_SHOT"):  # packaging/smoke.sh only
        import smoke_gui

        smoke_gui.install()
    sys.exit(main())
