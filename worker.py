"""farmhand worker: runs the tasks the master orders.

`python worker.py --help` lists the flags; the program lives in farmhand.worker.main.
"""

import sys

from farmhand.worker.main import main

if __name__ == "__main__":
    sys.exit(main())
