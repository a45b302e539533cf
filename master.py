"""farmhand master: the hub every agent, script and operator connects to.

`python master.py --help` lists the flags; the program lives in farmhand.master.main.
"""

import sys

from farmhand.master.main import main

if __name__ == "__main__":
    sys.exit(main())
