"""`python -m farmhand.hardware`: the same program as hwagent.py."""

import sys

from farmhand.hardware.main import main

sys.exit(main())
