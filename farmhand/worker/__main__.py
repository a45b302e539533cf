"""`python -m farmhand.worker`: the same program as worker.py."""

import sys

from farmhand.worker.main import main

sys.exit(main())
