"""farmhand node: supervises this machine's agents.

`python node.py --help` lists the flags; the program lives in farmhand.node.main.
"""

import sys

from farmhand.node.main import main

if __name__ == "__main__":
    sys.exit(main())
