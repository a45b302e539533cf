"""farmhand hwagent: bridges one serial device or a tailed log file.

`python hwagent.py --help` lists the flags; the program lives in farmhand.hardware.main.
"""

import sys

from farmhand.hardware.main import main

if __name__ == "__main__":
    sys.exit(main())
