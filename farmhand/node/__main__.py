"""`python -m farmhand.node`: the same program as node.py."""

import sys

from farmhand.node.main import main

sys.exit(main())
