"""`python -m farmhand.master`: the same program as master.py."""

import sys

from farmhand.master.main import main

sys.exit(main())
